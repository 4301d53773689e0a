"""Subspace training (Li, Farkhoor, Liu, Yosinski, ICLR 2018): theta = theta0 + P theta_d.

``train.subspace: {dim, projection, seed}`` trains a layer-list network in a random ``dim``-dimensional
subspace of its ``D`` weights: ``theta0`` (the network's own initialization, after ``init_from``) stays
frozen, ``theta_d`` (zeros at the start, so the network begins exactly as initialized) is the only
trained vector, and ``P`` (``D x dim``) is a fixed random projection regenerated from its seed:

- ``dense``: Gaussian entries, each column divided by its norm (``D * dim`` floats);
- ``sparse``: a torch sparse matrix of density ``1/sqrt(D)``, +-1 entries, columns normalized;
- ``fastfood``: one global ``H G Pi H B`` transform over the length padded to a power of two
  (``O(D)`` memory), with the official code's normalization (uber-research/intrinsic-dimension:
  divide by ``sqrt(L * sum G^2) * sqrt(D / L)``), so a column's expected norm is one.

Each basis direction (a column of ``P``) spans the whole network, as in the official code: one
projection of the concatenated weights, not one per layer.

The network's parameters are replaced in each training forward pass (``torch.func.functional_call``);
its buffers (batch-norm running statistics) are its own and update as in direct training: they are
not part of the subspace. After each epoch's training pass ``materialize()`` writes ``theta`` into the
network's parameters, so validation, checkpoints' ``model`` weights, ``predict`` and ``export`` see
an ordinary network; the checkpoint adds ``subspace`` (``theta0``, ``theta_d``, the projection's kind,
seed and sizes) for exact resume. ``P`` itself is never stored.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.func import functional_call

from layerlab.core.errors import ConfigError

DENSE_MAX_ENTRIES = 2**27  # 512 MiB of float32: beyond it a dense P is refused (use sparse or fastfood)
WHERE = "train.subspace"
MATMUL_LEVELS = 4  # fwht: the levels mixed by a 16 x 16 matmul at each end


# ---------------------------------------------------------------- the Walsh-Hadamard transform


_HADAMARD: dict[tuple, torch.Tensor] = {}


def _hadamard_matrix(levels: int, like: torch.Tensor) -> torch.Tensor:
    """The ``2^levels`` square Walsh-Hadamard matrix (Sylvester's construction), entries +-1."""
    key = (levels, like.dtype, like.device)
    if key not in _HADAMARD:
        h = torch.ones(1, 1, dtype=like.dtype, device=like.device)
        for _ in range(levels):
            h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
        _HADAMARD[key] = h
    return _HADAMARD[key]


def fwht(x: torch.Tensor) -> torch.Tensor:
    """The unnormalized fast Walsh-Hadamard transform ``H x`` of a vector whose length is a power of two.

    ``H`` is symmetric and ``H H = L I``. ``H_L = H_hi (x) I (x) H_lo``: the lowest ``MATMUL_LEVELS`` bits
    are mixed by one contiguous matmul with a 16 x 16 Hadamard matrix, the highest by another, and the
    levels between by butterfly passes over two ping-pong buffers (their inner runs are contiguous,
    which is what keeps a pass fast on the CPU).
    """
    n = x.numel()
    levels = n.bit_length() - 1
    low = min(MATMUL_LEVELS, levels)
    high = min(MATMUL_LEVELS, levels - low)
    y = (x.reshape(-1, 1 << low) @ _hadamard_matrix(low, x)).reshape(n)
    dst = torch.empty_like(y)
    h, stop = 1 << low, n >> high
    while h < stop:
        a, out = y.view(-1, 2, h), dst.view(-1, 2, h)
        torch.add(a[:, 0], a[:, 1], out=out[:, 0])
        torch.sub(a[:, 0], a[:, 1], out=out[:, 1])
        y, dst = dst, y
        h *= 2
    if high:
        y = (_hadamard_matrix(high, x) @ y.view(1 << high, -1)).reshape(n)
    return y


class _SparseMatVec(torch.autograd.Function):
    """``P v`` for a CSR ``P``, with the gradient ``P^T g`` from a CSR copy of ``P^T`` (fast on the CPU)."""

    @staticmethod
    def forward(ctx, v: torch.Tensor, p: torch.Tensor, p_t: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(p_t)
        return (p @ v.unsqueeze(1)).squeeze(1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (p_t,) = ctx.saved_tensors
        return (p_t @ grad.unsqueeze(1)).squeeze(1), None, None


# ---------------------------------------------------------------- projections


class Projection(torch.nn.Module):
    """A fixed ``D x dim`` map ``theta_d -> P theta_d``; its tensors are buffers (moved with ``.to``)."""

    kind = ""

    def __init__(self, size: int, dim: int):
        super().__init__()
        self.size, self.dim = int(size), int(dim)

    def matrix(self) -> torch.Tensor:
        """``P`` as a dense ``(D, dim)`` tensor (tests and small sizes only)."""
        eye = torch.eye(self.dim, device=self._device())
        with torch.no_grad():
            return torch.stack([self(eye[j]) for j in range(self.dim)], dim=1)

    def _device(self) -> torch.device:
        return next(iter(self.buffers())).device


class DenseProjection(Projection):
    """Gaussian ``P`` with unit-norm columns."""

    kind = "dense"

    def __init__(self, size: int, dim: int, generator: torch.Generator):
        super().__init__(size, dim)
        if size * dim > DENSE_MAX_ENTRIES:
            gib = size * dim * 4 / 2**30
            raise ConfigError(
                f"a dense projection of {size:,} x {dim:,} would take {gib:.1f} GiB",
                hint="use projection: sparse or fastfood for this size",
                where=f"{WHERE}.projection",
            )
        p = torch.randn(size, dim, generator=generator)
        self.register_buffer("p", p / p.norm(dim=0, keepdim=True))

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return self.p @ theta_d

    def matrix(self) -> torch.Tensor:
        return self.p.clone()


class SparseProjection(Projection):
    """Sparse ``P`` (COO) of density ``1/sqrt(D)``: each column's nonzeros are +-1, scaled to unit norm.

    Each column draws its number of nonzeros from Binomial(D, 1/sqrt(D)) (at least one), their rows
    without repetition and their signs uniformly (Li et al.'s sparse projection, after Li, Hastie and
    Church's very sparse random projections).
    """

    kind = "sparse"

    def __init__(self, size: int, dim: int, generator: torch.Generator):
        super().__init__(size, dim)
        density = 1.0 / math.sqrt(size)
        counts = torch.binomial(
            torch.full((dim,), float(size)), torch.full((dim,), density), generator=generator
        )
        counts = counts.long().clamp(min=1)
        columns = torch.repeat_interleave(torch.arange(dim), counts)
        rows = _distinct_rows(counts, size, generator)
        signs = torch.randint(0, 2, (len(rows),), generator=generator).float() * 2 - 1
        values = signs / counts.float().sqrt()[columns]
        indices = torch.stack([rows, columns])
        with torch.sparse.check_sparse_tensor_invariants(False):
            p = torch.sparse_coo_tensor(indices, values, (size, dim)).coalesce()
        with warnings.catch_warnings():  # "CSR support is in beta": matrix-vector products are all we use
            warnings.simplefilter("ignore", UserWarning)
            self.register_buffer("p", p.to_sparse_csr())
            self.register_buffer("p_t", p.t().coalesce().to_sparse_csr())

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return _SparseMatVec.apply(theta_d, self.p, self.p_t)

    def matrix(self) -> torch.Tensor:
        return self.p.to_dense()


def _distinct_rows(counts: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """For each column, ``counts[j]`` distinct row indices in ``[0, size)`` (drawn with rejection)."""
    rows = []
    for count in counts.tolist():
        picked = torch.unique(torch.randint(0, size, (count,), generator=generator))
        while len(picked) < count:  # rare: a repeated row is drawn again
            extra = torch.randint(0, size, (count - len(picked),), generator=generator)
            picked = torch.unique(torch.cat([picked, extra]))
        rows.append(picked[torch.randperm(len(picked), generator=generator)][:count].sort().values)
    return torch.cat(rows)


class FastfoodProjection(Projection):
    """One global Fastfood transform ``P theta_d = (H G Pi H B pad(theta_d))[:D] / norm`` in ``O(D)`` memory.

    ``L = 2^ceil(log2 D)``; ``B`` random signs, ``Pi`` a random permutation, ``G`` Gaussian, each of
    length ``L``; ``H`` the unnormalized Walsh-Hadamard matrix. ``norm = sqrt(L * sum G^2) * sqrt(D / L)``
    as in the official ``fastfood_torched`` / ``tf_fastfood_transform``: a column of the full ``L x L``
    transform has norm ``sqrt(L * sum G^2)`` exactly; its first ``D`` rows keep about ``D / L`` of it.
    """

    kind = "fastfood"

    def __init__(self, size: int, dim: int, generator: torch.Generator):
        super().__init__(size, dim)
        self.padded = 1 << max(0, math.ceil(math.log2(size)))
        length = self.padded
        signs = torch.randint(0, 2, (length,), generator=generator).float() * 2 - 1
        perm = torch.randperm(length, generator=generator)
        gauss = torch.randn(length, generator=generator)
        self.register_buffer("b", signs)
        self.register_buffer("pi", perm)
        self.register_buffer("g", gauss)
        self.divisor = math.sqrt(length * float((gauss.double() ** 2).sum())) * math.sqrt(size / length)
        self.block = 1 << max(0, math.ceil(math.log2(dim)))  # the power of two >= dim
        # (H_L x)[i] = (H_block x[:block])[i mod block] when x is zero past ``block`` (H_L[i, j] depends
        # on i mod block for j < block): Pi H B pad(theta_d) gathers H_block B theta_d at pi mod block
        self.register_buffer("pi_block", perm % self.block)
        self.register_buffer("pi_inverse", torch.argsort(perm))
        self.register_buffer("g_scaled", gauss / self.divisor)  # G and the normalization in one product

    def forward(self, theta_d: torch.Tensor) -> torch.Tensor:
        return _Fastfood.apply(theta_d, self)

    def transform(self, theta_d: torch.Tensor) -> torch.Tensor:
        """``P theta_d``: Pi H B pad(theta_d) is a gather of ``H_block B theta_d`` at ``pi mod block``."""
        head = torch.nn.functional.pad(theta_d, (0, self.block - self.dim)) * self.b[: self.block]
        spread = torch.index_select(fwht(head), 0, self.pi_block) * self.g_scaled
        return fwht(spread)[: self.size]

    def transpose(self, grad: torch.Tensor) -> torch.Tensor:
        """``P^T grad`` (the gradient of ``transform``): ``[B H fold(Pi^T G H pad(grad))][:dim]``, where
        ``fold`` sums the ``L / block`` tiles (only the first ``block`` outputs of the first H are needed)."""
        mixed = fwht(torch.nn.functional.pad(grad, (0, self.padded - self.size))) * self.g_scaled
        folded = torch.index_select(mixed, 0, self.pi_inverse).view(-1, self.block).sum(0)
        return (fwht(folded) * self.b[: self.block])[: self.dim]


class _Fastfood(torch.autograd.Function):
    """``P theta_d`` with a hand-written ``P^T g`` backward: one full transform each way, nothing saved."""

    @staticmethod
    def forward(ctx, theta_d: torch.Tensor, projection: FastfoodProjection) -> torch.Tensor:
        ctx.projection = projection
        return projection.transform(theta_d)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return ctx.projection.transpose(grad.contiguous()), None


PROJECTIONS = {"dense": DenseProjection, "sparse": SparseProjection, "fastfood": FastfoodProjection}


def make_projection(kind: str, size: int, dim: int, seed: int) -> Projection:
    """The projection ``kind`` of ``D = size`` weights onto ``dim`` directions, drawn from ``seed`` (CPU)."""
    if dim > size:
        raise ConfigError(
            f"dim {dim:,} is larger than the network's {size:,} parameters",
            hint=f"choose {WHERE}.dim at most {size:,}",
            where=f"{WHERE}.dim",
        )
    generator = torch.Generator().manual_seed(int(seed))
    return PROJECTIONS[kind](size, dim, generator)


# ---------------------------------------------------------------- the subspace network


class SubspaceNetwork(torch.nn.Module):
    """What the training steps call: ``network`` evaluated at ``theta0 + P theta_d``.

    Args:
        network: the built network (its parameters become ``theta0`` and stop requiring gradients).
        projection: the fixed ``P`` (its ``size`` must be the network's parameter count).
        seed: the seed ``P`` was drawn from (kept in checkpoints).
    """

    def __init__(self, network: torch.nn.Module, projection: Projection, seed: int):
        super().__init__()
        self.network = network
        self.projection = projection
        self.seed = int(seed)
        params = list(network.named_parameters())
        if sum(p.numel() for _, p in params) != projection.size:
            raise ValueError(
                f"the projection maps onto {projection.size} weights, the network has another count"
            )
        self.names = [name for name, _ in params]
        self.shapes = [tuple(p.shape) for _, p in params]
        self.numels = [p.numel() for _, p in params]
        with torch.no_grad():
            theta0 = torch.cat([p.detach().reshape(-1).float() for _, p in params])
        self.register_buffer("theta0", theta0)
        for _, p in params:
            p.requires_grad_(False)
        self.theta_d = torch.nn.Parameter(torch.zeros(projection.dim, device=theta0.device))

    @property
    def dim(self) -> int:
        return self.projection.dim

    @property
    def size(self) -> int:
        return self.projection.size

    def theta(self) -> torch.Tensor:
        """The flat weights ``theta0 + P theta_d`` (differentiable in ``theta_d``)."""
        return self.theta0 + self.projection(self.theta_d)

    def _split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        pieces = torch.split(flat, self.numels)
        return {n: t.view(s) for n, t, s in zip(self.names, pieces, self.shapes, strict=True)}

    def forward(self, *args, **kwargs):
        # theta in float32 even under train.precision's autocast: a bf16 transform would round the
        # small P theta_d away against theta0; the network's own layers still autocast
        with torch.autocast(self.theta0.device.type, enabled=False):
            weights = self._split(self.theta())
        return functional_call(self.network, weights, args, kwargs)

    @torch.no_grad()
    def materialize(self) -> None:
        """Write ``theta0 + P theta_d`` into the network's own parameters (validation, checkpoints)."""
        weights = self._split(self.theta())
        for name, param in self.network.named_parameters():
            param.copy_(weights[name])

    def describe(self) -> dict:
        """The subspace in a summary: kind, seed, ``dim`` and the network's ``D``."""
        return {
            "projection": self.projection.kind,
            "dim": self.dim,
            "parameters": self.size,
            "seed": self.seed,
        }

    def checkpoint_state(self) -> dict:
        """What exact resume needs besides the optimizer: theta0, theta_d and how to redraw P."""
        return {
            **self.describe(),
            "theta0": self.theta0.detach().cpu().clone(),
            "theta_d": self.theta_d.detach().cpu().clone(),
        }

    def load_checkpoint_state(self, state: dict | None) -> None:
        """Restore theta0 and theta_d (P was redrawn from the same seed); then materialize."""
        if state is None:
            raise ConfigError(
                "the checkpoint was trained without a subspace",
                hint="resume with the recorded config (no --set train.subspace...)",
                where=WHERE,
            )
        if (
            int(state["dim"]) != self.dim
            or int(state["parameters"]) != self.size
            or state["projection"] != self.projection.kind
            or int(state["seed"]) != self.seed
        ):
            raise ConfigError(
                f"the checkpoint trained a {state['projection']} subspace of dim {state['dim']} (seed "
                f"{state['seed']}) over {state['parameters']} parameters, the config asks a "
                f"{self.projection.kind} one of dim {self.dim} (seed {self.seed}) over {self.size}",
                hint="resume with the recorded config (no --set train.subspace...)",
                where=f"{WHERE}.dim",
            )
        with torch.no_grad():
            self.theta0.copy_(state["theta0"])
            self.theta_d.copy_(state["theta_d"])
        self.materialize()


def check_compatible(cfg) -> None:
    """Refuse the settings that make no sense (or are not supported) with subspace training.

    Args:
        cfg: the ``ExperimentConfig`` (its ``train.subspace`` set).
    """
    train, model = cfg.train, cfg.model
    refused = [
        (bool(model.freeze), "model.freeze", "every weight moves only along P; remove model.freeze"),
        (bool(model.lr_multipliers), "model.lr_multipliers", "theta_d has one lr; remove lr_multipliers"),
        (
            model.pretrained_lr_multiplier is not None,
            "model.pretrained_lr_multiplier",
            "theta_d has one lr; remove pretrained_lr_multiplier",
        ),
        (bool(train.l1 or train.l2), "train.l1/l2", "use train.weight_decay (it decays theta_d)"),
        (train.distributed.world_size > 1, "train.distributed", "train a subspace in one process"),
        (train.compile, "train.compile", "set train.compile=false"),
    ]
    for bad, where, hint in refused:
        if bad:
            raise ConfigError("does not combine with train.subspace", hint=hint, where=where)


def make_subspace(cfg, network: torch.nn.Module) -> SubspaceNetwork | None:
    """The subspace wrapper of ``network`` for ``cfg.train.subspace`` (None when it is not set).

    Args:
        cfg: the ``ExperimentConfig``; the projection's seed defaults to the run's seed.
        network: the built network on its device (its current weights become ``theta0``).
    """
    section = cfg.train.subspace
    if section is None:
        return None
    check_compatible(cfg)
    size = sum(p.numel() for p in network.parameters())
    seed = subspace_seed(cfg)
    projection = make_projection(section.projection, size, section.dim, seed)
    device = next(network.parameters()).device
    return SubspaceNetwork(network, projection.to(device), seed)


def subspace_seed(cfg) -> int:
    """The projection's seed: ``train.subspace.seed``, else the run's seed."""
    seed = cfg.train.subspace.seed
    return int(cfg.seed if seed is None else seed)
