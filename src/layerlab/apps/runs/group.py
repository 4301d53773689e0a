"""A worker's run that asks for ``train.distributed``: executed as a torchrun group on this machine.

The worker (``execution.run_execute``) keeps its claim, lease and heartbeat and starts the group
(``python -m layerlab.train.launch``, torchrun) with every rank running this module. Rank 0 is the
writer: it records through the same fenced ``RunRecorder`` (this execution's lease, so a worker that
lost the run writes nothing more, ``on_before_write`` included) and polls cancel and the time limit;
the other ranks train without touching the store. Rank 0 leaves its outcome in a small JSON file
that the worker reads back: the summary, or that it was cancelled, timed out, lost or failed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.train.launch import LaunchPlan, group_failure, launch_command, launch_env


def run_train_group(*, run_id: int, lease: int, recorder, cfg, mapping: dict, run_dir: Path, resume: bool,
                    cache_dir: Path, threads: int) -> dict:  # fmt: skip
    """Train the run as a group of ``cfg.train.distributed.nproc_per_node`` processes; returns the summary.

    Raises ``RunLeaseLost`` (``recorder.lost()``) when rank 0 lost the lease, ``LayerlabError`` (one line) when the group
    failed; sets ``recorder.cancelled`` / ``recorder.timed_out`` from rank 0's recorder.
    """
    dist = cfg.train.distributed
    if dist.nnodes != 1:
        raise ConfigError(
            "a worker trains a run on its own machine: train.distributed.nnodes must be 1",
            hint="train on several machines with `layerlab train CONFIG --nnodes N --rdzv-endpoint HOST:PORT`",
            where="train.distributed.nnodes",
        )
    plan = LaunchPlan(nproc_per_node=dist.nproc_per_node)
    left = 0
    if recorder.deadline is not None:
        left = max(1, int(recorder.deadline - time.monotonic()))
    with tempfile.TemporaryDirectory(prefix="layerlab-group-") as tmp:
        spec = Path(tmp) / "spec.json"
        outcome = Path(tmp) / "outcome.json"
        spec.write_text(
            json.dumps(
                {
                    "run_id": run_id,
                    "lease": lease,
                    "max_seconds": left,
                    "config": mapping,
                    "run_dir": str(run_dir),
                    "resume": resume,
                    "cache_dir": str(cache_dir) if cache_dir else None,
                    "outcome": str(outcome),
                }
            ),
            encoding="utf-8",
        )
        env = launch_env(cfg.train.num_threads or threads, Path(tmp) / "report.json")
        env["OMP_NUM_THREADS"] = str(cfg.train.num_threads or threads)  # this host's share, per rank
        program = ["-m", "layerlab.apps.runs.group", str(spec)]
        returncode = subprocess.run(launch_command(plan, program), env=env, check=False).returncode
        try:
            result = json.loads(outcome.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            result = {}
        error = group_failure(Path(tmp) / "report.json", returncode)
    recorder.cancelled = bool(result.get("cancelled"))
    recorder.timed_out = bool(result.get("timed_out"))
    recorder.group_pruned = bool(result.get("pruned"))  # rank 0's sweep pruner stopped the group
    if result.get("lost"):
        raise recorder.lost()
    if result.get("error"):
        raise LayerlabError(str(result["error"]))
    if error is not None:
        raise error
    if returncode != 0 or "summary" not in result:
        raise LayerlabError(f"the training group failed: the launcher exited with code {returncode}")
    return result["summary"]


def rank_callbacks(recorder) -> list:
    """The callbacks of one rank: none on the others; on rank 0 (``recorder`` given) the recorder and
    the registered factories' callbacks (``run_extra_callbacks``: the reconstruction and frames
    reports, a sweep trial's pruner), so each is run once, by the writer, as in a run of one process.
    A pruner's stop reaches every rank (the engine's stop is a collective); its verdict goes back to
    the worker in the outcome (``pruned``).
    """
    if recorder is None:
        return []
    from layerlab.apps.runs.execution import run_extra_callbacks

    return [recorder, *run_extra_callbacks(recorder.run)]


def rank_main(spec_path: str) -> int:
    """One rank of a worker's group (``python -m layerlab.apps.runs.group SPEC``)."""
    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    rank = int(os.environ.get("RANK", "0"))
    from layerlab.server.bootstrap import django_setup

    django_setup()
    from layerlab.apps.runs.execution import RunLeaseLost, RunRecorder, json_safe
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import train_experiment

    cfg = experiment_from_mapping(spec["config"])
    recorder = None
    if rank == 0:
        recorder = RunRecorder(spec["run_id"], lease=spec["lease"], max_seconds=int(spec["max_seconds"] or 0))
    callbacks = rank_callbacks(recorder)
    outcome: dict = {}
    try:
        summary = train_experiment(
            cfg,
            Path(spec["run_dir"]),
            resume=bool(spec["resume"]),
            device="auto",
            callbacks=callbacks,
            cache_dir=Path(spec["cache_dir"]) if spec["cache_dir"] else None,
        )
        outcome["summary"] = json_safe(summary) if isinstance(summary, dict) else {}
    except RunLeaseLost:
        outcome["lost"] = True
    except LayerlabError as exc:
        outcome["error"] = exc.one_line()
    except Exception as exc:  # the worker shows the type, never a message that may quote a file
        from layerlab.train.distributed import peer_lost

        if not peer_lost(exc):  # else the launcher's report says which rank died
            outcome["error"] = f"internal error: {type(exc).__name__}"
    if recorder is not None:
        try:
            recorder.close()  # rank 0's points still queued for the database
        except RunLeaseLost:
            outcome = {"lost": True}
        except Exception as exc:
            outcome.setdefault("error", f"internal error: {type(exc).__name__}")
        outcome.update(
            cancelled=recorder.cancelled,
            timed_out=recorder.timed_out,
            pruned=any(getattr(cb, "pruned", False) for cb in callbacks),
        )
        Path(spec["outcome"]).write_text(json.dumps(outcome), encoding="utf-8")
    return 0 if "summary" in outcome or outcome.get("lost") else 1


if __name__ == "__main__":
    from layerlab.train.launch import exit_process

    exit_process(rank_main(sys.argv[1]))
