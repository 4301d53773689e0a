"""``layerlab train --nproc-per-node N``: one run as a torchrun group (``train/launch.py``).

The command started by the user is the launcher's parent: it checks the config and the run
directory, starts ``python -m layerlab.train.launch`` (torchrun) and waits. Every rank runs
``layerlab train`` again with an explicit ``--run-dir`` (so all ranks agree on it); rank 0 is the
writer: it records the run in the store, shows progress and prints the summary; the other ranks
train silently. A group that torchrun restarts (``--max-restarts``) resumes from its last checkpoint.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import tempfile
from pathlib import Path

from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.train.launch import (
    STOPPED_EXIT_CODES,
    LaunchPlan,
    group_failure,
    launch_command,
    launch_env,
)


class GroupStopped(LayerlabError):
    """torchrun stopped this rank (another one failed): the launcher reports the failure in one line."""

    exit_code = STOPPED_EXIT_CODES[0]  # 128 + SIGTERM, as if torchrun had stopped it


def as_group_stop(exc: BaseException) -> BaseException:
    """``GroupStopped`` for a collective that failed because another rank died, else ``exc``."""
    from layerlab.train.distributed import peer_lost

    if peer_lost(exc):
        return GroupStopped("the training group stopped: another rank died")
    return exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "distributed data-parallel training (torchrun; train.batch_size stays the global batch)"
    )
    group.add_argument(
        "--nproc-per-node",
        type=int,
        metavar="N",
        help="training processes on this machine (default train.distributed.nproc_per_node, 1)",
    )
    group.add_argument(
        "--nnodes", type=int, metavar="N", help="machines of the group (default train.distributed.nnodes, 1)"
    )
    group.add_argument(
        "--node-rank", type=int, default=0, metavar="R", help="this machine's rank, 0..nnodes-1"
    )
    group.add_argument(
        "--rdzv-endpoint",
        metavar="HOST:PORT",
        help="the c10d rendezvous of a multi-node group: an address of the --node-rank 0 machine, which serves it",
    )
    group.add_argument(
        "--local-addr",
        metavar="ADDR",
        help="this machine's address that the other nodes reach (default: its host name)",
    )
    group.add_argument(
        "--max-restarts",
        type=int,
        default=0,
        metavar="N",
        help="restart a failed group up to N times; it resumes from its last checkpoint",
    )


def in_group() -> bool:
    """True in a rank of a group (started by torchrun)."""
    from layerlab.train.distributed import in_torchrun

    return in_torchrun()


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


def plan_for(args: argparse.Namespace, cfg, run_dir: Path) -> LaunchPlan | None:
    """The launch of this node, or None for a run of one process (or inside a rank already)."""
    if in_group() or getattr(args, "remote", None):
        return None
    dist = cfg.train.distributed
    nproc = args.nproc_per_node if args.nproc_per_node is not None else dist.nproc_per_node
    nnodes = args.nnodes if args.nnodes is not None else dist.nnodes
    plan = LaunchPlan(
        nproc_per_node=nproc,
        nnodes=nnodes,
        node_rank=args.node_rank,
        rdzv_endpoint=args.rdzv_endpoint,
        max_restarts=args.max_restarts,
        local_addr=args.local_addr,
        rdzv_id="layerlab-" + hashlib.sha256(run_dir.name.encode()).hexdigest()[:12],
    )
    plan.check()
    if plan.world_size > 1:  # before any process starts: the global batch must feed every rank
        import torch

        from layerlab.train.distributed import SingleProcess

        SingleProcess(torch.device("cpu"), world_size=plan.world_size).check(cfg.train.batch_size)
    if plan.world_size == 1 and plan.nnodes == 1:
        if args.max_restarts:
            raise ConfigError(
                "--max-restarts restarts a group of several processes",
                hint="add --nproc-per-node 2 (or more)",
                where="--max-restarts",
            )
        return None
    return plan


def rank_argv(args: argparse.Namespace, run_dir: Path, nproc: int = 1, nnodes: int = 1) -> list[str]:
    """What every rank runs: this ``layerlab train`` with an explicit run directory."""
    argv = ["-m", "layerlab.cli.main", "train"]
    argv += ["--resume", str(run_dir)] if args.resume else [str(args.config), "--run-dir", str(run_dir)]
    for override in args.overrides:
        argv += ["--set", override]
    # recorded in the run's config, so `--resume DIR` alone continues with the same world size
    argv += [
        "--set",
        f"train.distributed.nproc_per_node={nproc}",
        "--set",
        f"train.distributed.nnodes={nnodes}",
    ]
    argv += ["--device", args.device]
    if args.json:
        argv.append("--json")
    if args.no_record:
        argv.append("--no-record")
    for flag, value in (("--user", args.user), ("--project", args.project)):
        if value:
            argv += [flag, str(value)]
    for tag in args.tags or ():
        argv += ["--tag", tag]
    return argv


def run_group(args: argparse.Namespace, cfg, run_dir: Path, plan: LaunchPlan) -> int:
    """Start this node's torchrun and wait; a failed group becomes one error line."""
    from layerlab.train.threads import threads_for

    threads = cfg.train.num_threads or threads_for(plan.nproc_per_node)
    with tempfile.TemporaryDirectory(prefix="layerlab-launch-") as tmp:
        report = Path(tmp) / "report.json"
        env = launch_env(threads, report)
        env["LAYERLAB_GROUP_RUN_DIR"] = str(run_dir)
        process = subprocess.Popen(
            launch_command(plan, rank_argv(args, run_dir, plan.nproc_per_node, plan.nnodes)), env=env
        )
        try:
            returncode = process.wait()
        except KeyboardInterrupt:  # the ranks got the same Ctrl-C; let them stop
            returncode = process.wait()
            raise
        error = group_failure(
            report,
            returncode,
            hint=f"continue it with `layerlab train --resume {run_dir}` and the same number of processes",
        )
    if error is not None:
        raise error
    return returncode


def rank_done() -> None:
    """Training is over in this rank: torchrun's SIGTERM now simply ends it (no error while exiting)."""
    if in_group():
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _key(assignment: str) -> str:
    return ".".join(k for k in assignment.split("=", 1)[0].strip().split(".") if k)


def rank_setup(args: argparse.Namespace) -> None:
    """In a rank: a group restarted by torchrun resumes its run; torchrun's SIGTERM (another rank
    failed) ends this rank as an error, so rank 0 closes its record in the store."""
    from layerlab.train import rundir

    if int(os.environ.get("TORCHELASTIC_RESTART_COUNT", "0") or 0) > 0 and not args.resume and args.run_dir:
        run_dir = Path(args.run_dir)
        if (run_dir / rundir.CONFIG).is_file():
            args.resume, args.config = str(run_dir), None
            # the recorded config already holds the new run's --set values; only these may be set again
            args.overrides = [o for o in args.overrides if _key(o) in rundir.RESUME_OVERRIDABLE]

    def stopped(signum, frame):
        signal.signal(signum, signal.SIG_DFL)  # once: a second SIGTERM ends the process at once
        raise GroupStopped("the training group stopped: another rank failed or the launcher was stopped")

    signal.signal(signal.SIGTERM, stopped)
    if rank() != 0:
        args.no_record = True  # only the writer talks to the store
