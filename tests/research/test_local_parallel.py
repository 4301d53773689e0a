"""run_local with a pool of processes: a pool process killed mid-experiment loses no trial that finished; the
rerun trains only what was not finished, and every finished trial was told to on_event (the lab's rows)."""

from __future__ import annotations

import os
import time

import pytest

from layerlab.research import local
from layerlab.research.local import ExperimentInterrupted, read_results, run_local


def killed_pool_trial(args: tuple):
    """A pool process's work in which trial seed=1's process is killed while seed=0's result is still
    on its way back: seed=0's process finishes its trial, then holds its result until the pool breaks
    (a broken pool ends its other processes), so only what that process wrote itself can keep it."""
    trial, run_dir = args[0], args[2]
    finished = run_dir.parent / "seed=0.finished"
    if trial.key == "seed=0":
        result = local._pool_trial(args)
        finished.touch()
        wait_for(run_dir.parent / "never")  # ended by the broken pool
        return result
    wait_for(finished)
    os._exit(1)  # as the OOM killer would


def wait_for(path) -> None:
    for _ in range(3000):  # at most 5 minutes: the test fails rather than hangs
        if path.exists():
            return
        time.sleep(0.1)


@pytest.mark.slow
def test_a_killed_pool_process_loses_no_finished_trial(tiny_config, tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(local, "_pool_trial", killed_pool_trial)
    with pytest.raises(ExperimentInterrupted, match="the process training trial seed=1 died"):
        run_local(tiny_config, tmp_path / "exp", parallel=2, on_event=events.append)
    finished = [(e["key"], e["status"]) for e in events if e["event"] == "trial_finished"]
    assert finished == [("seed=0", "completed")]
    assert set(read_results(tmp_path / "exp")) == {"seed=0"}

    monkeypatch.undo()
    again = run_local(tiny_config, tmp_path / "exp", parallel=2)
    assert again.ran == ["seed=1"] and again.resumed == []  # seed=0 is not trained again
    assert {k: r.status for k, r in again.results.items()} == {"seed=0": "completed", "seed=1": "completed"}
