"""The training strategy: which device, which rank, how many processes, who writes.

``SingleProcess`` is one process on one device (rank 0 of 1, the writer): every collective is a
no-op. ``DataParallel`` is one rank of a group launched by torchrun (``torch.distributed.run``,
see ``train/launch.py``): it joins the process group from torchrun's environment (``RANK``,
``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``...), gloo on the CPU and NCCL on CUDA (one device per
``LOCAL_RANK``), wraps the model in ``DistributedDataParallel`` and reduces what the ranks measured.

The contract both keep, so a DDP run means the same as one process:

- ``train.batch_size`` is the global batch. Each step takes the same global batch of the same
  seeded permutation in every rank; rank r trains on its contiguous part of it (``step_slices``),
  so the ranks' parts, in rank order, are the single-process batch. The loss of each rank is scaled
  (``loss_scale``) so that DDP's mean of the ranks' gradients is the gradient of the global batch's
  mean loss, also for a last batch that does not split evenly.
- Only the writer (rank 0) writes files, talks to the store and runs side-effecting callbacks;
  metrics are sums and counts all-reduced over the ranks; every decision to stop (early stopping,
  divergence, cancel) is made once and shared (``any``, ``broadcast``), so all ranks stop together.
"""

from __future__ import annotations

import datetime
import logging
import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from layerlab.core.errors import ConfigError

logger = logging.getLogger("layerlab.train")

BACKENDS = ("auto", "gloo", "nccl")
# torchrun's environment: a process started by torch.distributed.run has all of these
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# How long a rank waits for the others in a collective before the group fails (a dead peer is
# usually seen at once: its sockets close; this bounds the case where it hangs).
COLLECTIVE_TIMEOUT = datetime.timedelta(minutes=10)


def in_torchrun(env: os._Environ | dict | None = None) -> bool:
    """True inside a process started by torchrun (one rank of a group)."""
    env = os.environ if env is None else env
    return all(name in env for name in TORCHRUN_ENV)


def peer_lost(exc: BaseException) -> bool:
    """Whether ``exc`` is a collective failing because another rank died (its sockets closed): the
    launcher reports that rank's failure, this one only stops."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and any(
        mark in text
        for mark in (
            "Connection closed by peer",
            "Connection reset by peer",
            "gloo/transport",
            "NCCL",
            "ProcessGroup",
        )
    )


def choose_backend(backend: str, device: torch.device) -> str:
    """``auto`` is NCCL on CUDA, gloo on the CPU; NCCL without CUDA is a clear error."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend '{backend}'", hint="use auto, gloo or nccl", where="train.distributed.backend"
        )
    if backend == "auto":
        return "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise ConfigError(
            "the nccl backend needs CUDA devices and this run trains on the CPU",
            hint="use train.distributed.backend=auto (gloo on the CPU)",
            where="train.distributed.backend",
        )
    return backend


def step_slices(n: int, batch_size: int, world_size: int, rank: int) -> list[tuple[int, int, int]]:
    """This rank's part of every global batch of an epoch of ``n`` examples.

    Returns ``(start, stop, global_size)`` per step: positions in the epoch's permutation. The
    global batch ``[s, s + batch_size)`` is split in ``world_size`` contiguous parts whose sizes
    differ by at most one (the first ranks get the extra examples), so the parts of ranks 0..W-1,
    concatenated, are the global batch. A last global batch with fewer examples than ranks is
    dropped (a rank with nothing to train on would have no gradient to share).
    """
    slices = []
    for start in range(0, n, batch_size):
        size = min(batch_size, n - start)
        if size < world_size:
            break
        base, extra = divmod(size, world_size)
        first = start + rank * base + min(rank, extra)
        slices.append((first, first + base + (1 if rank < extra else 0), size))
    return slices


def loss_scale(local: int, global_size: int, world_size: int) -> float:
    """The factor on a rank's mean loss so that DDP's mean over ranks is the global batch's mean."""
    return local * world_size / global_size


@dataclass
class SingleProcess:
    """One process, one device: rank 0 of a world of 1, and so the writer of the run's files."""

    device: torch.device
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    backend: str = "none"

    @property
    def is_writer(self) -> bool:
        """Only the writer writes files, talks to the store and runs side-effecting callbacks."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def check(self, batch_size: int) -> None:
        """A config error before any training (the global batch must feed every rank)."""
        if batch_size < self.world_size:
            raise ConfigError(
                f"train.batch_size is the global batch ({batch_size}) and must be at least the number "
                f"of processes ({self.world_size})",
                hint=f"e.g. --set train.batch_size={self.world_size * 32}",
                where="train.batch_size",
            )

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module the training steps call (DDP in a group; the model itself here)."""
        return model

    def epoch_seed(self, seed: int, epoch: int) -> None:
        """Reseed the global RNGs for an epoch (a group only: one process keeps its RNG stream)."""

    def all_sum(self, values: list[float]) -> list[float]:
        """Sums over the ranks (float64)."""
        return [float(v) for v in values]

    def any(self, flag: bool) -> bool:
        """True on every rank when it is True on any."""
        return bool(flag)

    def broadcast(self, obj):
        """Rank 0's ``obj``, on every rank (picklable objects)."""
        return obj

    def gather(self, obj) -> list:
        """Every rank's ``obj`` on every rank, in rank order."""
        return [obj]

    def barrier(self) -> None:
        """Wait for every rank."""

    def close(self) -> None:
        """Leave the process group."""

    def describe(self) -> dict:
        """What summary.json records about the strategy."""
        return {"world_size": self.world_size, "backend": self.backend}


@dataclass
class DataParallel(SingleProcess):
    """One rank of a torchrun group (``DataParallel.from_env``)."""

    sync_batchnorm: bool = False

    @classmethod
    def from_env(cls, device: torch.device, *, backend: str = "auto", sync_batchnorm: bool = False):
        """Join the group torchrun started: its env names the rank, the world and the store."""
        rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
        if device.type == "cuda":  # one device per process on a host
            device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
            torch.cuda.set_device(device)
        chosen = choose_backend(backend, device)
        if sync_batchnorm and device.type != "cuda":
            logger.warning(
                "train.sync_batchnorm needs CUDA (torch's SyncBatchNorm): on the CPU each rank's batch "
                "norms use the statistics of its own part of the batch"
            )
            sync_batchnorm = False
        if not torch.distributed.is_initialized():
            kwargs = {"device_id": device} if device.type == "cuda" else {}
            torch.distributed.init_process_group(chosen, timeout=COLLECTIVE_TIMEOUT, **kwargs)
        return cls(
            device=device,
            rank=rank,
            world_size=world,
            local_rank=local_rank,
            local_world_size=local_world,
            backend=chosen,
            sync_batchnorm=sync_batchnorm,
        )

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        from torch.nn.parallel import DistributedDataParallel

        if self.sync_batchnorm and self.device.type == "cuda":  # torch's SyncBatchNorm is CUDA only
            # in place: the converted layers share the parameters and buffers of the model, which
            # keeps its own state_dict keys (checkpoints load in one process)
            _convert_batchnorm(model)
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def epoch_seed(self, seed: int, epoch: int) -> None:
        # Dropout and augmentation differ per rank (each rank sees other examples) and depend only
        # on (seed, epoch, rank): a resumed group draws what an uninterrupted one draws.
        value = (seed * 1_000_003 + epoch) * 4099 + self.rank
        random.seed(value)
        np.random.seed(value % 2**32)
        torch.manual_seed(value % 2**63)

    def all_sum(self, values: list[float]) -> list[float]:
        tensor = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        torch.distributed.all_reduce(tensor)
        return tensor.tolist()

    def any(self, flag: bool) -> bool:
        return self.all_sum([1.0 if flag else 0.0])[0] > 0

    def broadcast(self, obj):
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def gather(self, obj) -> list:
        out = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def barrier(self) -> None:
        torch.distributed.barrier()

    def close(self) -> None:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    @property
    def _comm_device(self) -> torch.device:
        return self.device if self.backend == "nccl" else torch.device("cpu")

    def describe(self) -> dict:
        return {
            "world_size": self.world_size,
            "backend": self.backend,
            "nnodes": self.world_size // max(1, self.local_world_size),
            "sync_batchnorm": self.sync_batchnorm,
        }


def _convert_batchnorm(model: torch.nn.Module) -> None:
    """Replace every batch norm child by a SyncBatchNorm holding the same parameters and buffers."""
    for name, child in model.named_children():
        if isinstance(child, torch.nn.modules.batchnorm._BatchNorm) and not isinstance(
            child, torch.nn.SyncBatchNorm
        ):
            setattr(model, name, torch.nn.SyncBatchNorm.convert_sync_batchnorm(child))
        else:
            _convert_batchnorm(child)


def make_strategy(
    device: torch.device, *, backend: str = "auto", sync_batchnorm: bool = False
) -> SingleProcess:
    """``DataParallel`` inside a torchrun group of more than one process, else ``SingleProcess``."""
    if in_torchrun() and int(os.environ["WORLD_SIZE"]) > 1:
        return DataParallel.from_env(device, backend=backend, sync_batchnorm=sync_batchnorm)
    return SingleProcess(device=device)
