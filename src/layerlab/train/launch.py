"""Launching a run through torchrun (``torch.distributed.run``): its rendezvous, its restarts.

``launch_command(plan, program)`` is the command line of one node: ``python -m layerlab.train.launch``
with torchrun's own arguments, then the program every rank runs (``-m layerlab.cli.main train ...``).
This module's ``main`` is torchrun's ``run`` with one change: a failed group is not a page of
banners but one JSON report (``LAYERLAB_LAUNCH_REPORT``) that the caller turns into one error line
(``group_failure``), and the exit code of the first failed rank.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from layerlab.core.errors import ConfigError, LayerlabError

REPORT_ENV = "LAYERLAB_LAUNCH_REPORT"
# the exit codes a rank's `layerlab` returns after printing its own error line (core.errors)
HANDLED_EXIT_CODES = range(1, 10)
# a rank that stopped because another died (cli.distributed.GroupStopped), or that torchrun stopped
STOPPED_EXIT_CODES = (128 + signal.SIGTERM, -signal.SIGTERM)


@dataclass
class LaunchPlan:
    """One node's part of a group: torchrun's options."""

    nproc_per_node: int = 1
    nnodes: int = 1
    node_rank: int = 0
    rdzv_endpoint: str | None = None  # HOST:PORT of the c10d rendezvous (multi-node)
    rdzv_id: str = "layerlab"
    max_restarts: int = 0
    local_addr: str | None = None  # this node's address the others reach (default: its host name)

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes

    def check(self) -> None:
        if self.nproc_per_node < 1 or self.nnodes < 1:
            raise ConfigError("--nproc-per-node and --nnodes must be at least 1", where="--nproc-per-node")
        if self.max_restarts < 0:
            raise ConfigError("--max-restarts must be 0 or more", where="--max-restarts")
        if not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(
                f"--node-rank {self.node_rank} is outside 0..{self.nnodes - 1}", where="--node-rank"
            )
        if self.nnodes > 1:
            host, _, port = (self.rdzv_endpoint or "").rpartition(":")
            if not host or not port.isdigit():
                raise ConfigError(
                    "a run on several nodes needs the rendezvous address of one of them",
                    hint="add --rdzv-endpoint HOST:PORT (the same on every node)",
                    where="--rdzv-endpoint",
                )

    def torchrun_args(self) -> list[str]:
        """torchrun's options for this node."""
        args = [f"--nproc-per-node={self.nproc_per_node}", f"--max-restarts={self.max_restarts}"]
        if self.nnodes == 1 and not self.rdzv_endpoint:
            return [*args, "--standalone", "--nnodes=1"]
        return [
            *args,
            f"--nnodes={self.nnodes}",
            f"--node-rank={self.node_rank}",
            "--rdzv-backend=c10d",
            f"--rdzv-endpoint={self.rdzv_endpoint}",
            f"--rdzv-id={self.rdzv_id}",
            # the rendezvous store is served by node 0 (whose address --rdzv-endpoint names), not
            # guessed from host names, which miss an address of a second network card
            f"--rdzv-conf=is_host={1 if self.node_rank == 0 else 0}",
            *([f"--local-addr={self.local_addr}"] if self.local_addr else []),
        ]


def launch_command(plan: LaunchPlan, program: list[str]) -> list[str]:
    """The command line of this node: the launcher, torchrun's options, then ``-m module args...``."""
    return [sys.executable, "-m", "layerlab.train.launch", *plan.torchrun_args(), *program]


def launch_env(threads: int, report: Path, base: dict | None = None) -> dict:
    """The environment of the launcher: each rank's CPU threads (torchrun would set 1), the report file."""
    env = dict(os.environ if base is None else base)
    env.setdefault("OMP_NUM_THREADS", str(max(1, threads)))
    env[REPORT_ENV] = str(report)
    env.setdefault("PYTHONUNBUFFERED", "1")  # each rank's lines as they come
    # Each attempt's rank 0 serves a fresh store for its process group: torchrun's shared rendezvous
    # store outlives a restart, and the ranks of a restarted group could read the addresses the dead
    # attempt left there (gloo: "Connection refused").
    env.setdefault("TORCH_DISABLE_SHARE_RDZV_TCP_STORE", "1")
    return env


def failure_text(rank: int, exitcode: int, world_size: int | None = None) -> str:
    """``rank 1 (of 2) was killed by SIGKILL`` / ``rank 0 exited with code 3``."""
    of = f" (of {world_size})" if world_size else ""
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        return f"rank {rank}{of} was killed by {name}"
    return f"rank {rank}{of} exited with code {exitcode}"


def group_failure(report: Path, returncode: int, *, hint: str = "") -> LayerlabError | None:
    """The error of a launcher that exited with ``returncode`` (None: the group succeeded, or a rank
    already printed its own error line, which the caller passes on as that exit code)."""
    if returncode == 0:
        return None
    try:
        data = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = {}
    if data.get("exitcode") in HANDLED_EXIT_CODES:
        return None
    if data.get("rank") is not None:
        what = failure_text(int(data["rank"]), int(data["exitcode"]), data.get("world_size"))
    elif data.get("error"):
        what = str(data["error"])
    elif returncode < 0:
        what = f"the launcher was killed by {signal.Signals(-returncode).name}"
    else:
        what = f"the launcher exited with code {returncode}"
    return LayerlabError(f"the training group failed: {what}", hint=hint or None)


def _write_report(data: dict) -> None:
    path = os.environ.get(REPORT_ENV)
    if path:
        Path(path).write_text(json.dumps(data), encoding="utf-8")


def _world(args) -> int | None:
    try:
        return int(args.nproc_per_node) * int(str(args.nnodes).split(":")[-1])
    except (TypeError, ValueError):
        return None


def exit_process(code: int) -> NoReturn:
    """Exit with ``code``; a rank of a torchrun group skips the interpreter's teardown.

    DDP's reducer keeps the gloo process group alive past ``destroy_process_group``, and gloo's
    threads hold tensors of it: freed while the interpreter is torn down, they can abort the rank
    (SIGABRT, after a run that succeeded). Its node then reports the group failed, and the other
    nodes wait at torchrun's exit barrier for minutes. So a rank flushes its output and logs and
    leaves with ``os._exit``; everything it wrote to files or the database is closed by then.
    """
    if os.environ.get("TORCHELASTIC_RUN_ID") is None:  # not started by torchrun
        sys.exit(code)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def root_failure(exc) -> tuple:
    """The rank whose failure stopped the group and its failure: the first by time among those that
    did not merely stop because another rank died (ranks torchrun sees fail in the same poll share a
    time, and the lowest rank would win the tie), else the first of all."""
    causes = {rank: f for rank, f in exc.failures.items() if f.exitcode not in STOPPED_EXIT_CODES}
    if not causes:
        return exc.get_first_failure()
    rank = min(causes, key=lambda r: (causes[r].timestamp, r))
    return rank, causes[rank]


def main(argv: list[str] | None = None) -> int:
    """torchrun, with its failures as a report and an exit code instead of banners and a traceback."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # the report says what failed
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except ChildFailedError as exc:
        rank, failure = root_failure(exc)
        _write_report({"rank": int(rank), "exitcode": int(failure.exitcode), "world_size": _world(args)})
        code = int(failure.exitcode)
        return code if code > 0 else 128 - code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # rendezvous timeout, an address in use...: one line for the caller
        text = str(exc).strip().splitlines()
        _write_report({"error": f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")})
        return 1
    _write_report({"ok": True})
    return 0


if __name__ == "__main__":
    sys.exit(main())
