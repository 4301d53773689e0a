"""A sweep trial trained as a torchrun group can be pruned: the pruner runs on rank 0 (whose stop every
rank follows, the engine's stop being a collective) and its verdict reaches the worker in the outcome."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from layerlab.apps.runs import execution, group
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import run_create

pytestmark = pytest.mark.django_db(transaction=True)  # the recorder's writer has its own connection

GROUP = {
    "data": {"source": "spiral", "points_per_class": 20},
    "model": {"preset": "mlp", "options": {"hidden": [4]}},
    "train": {"epochs": 4, "batch_size": 16, "num_threads": 1, "distributed": {"nproc_per_node": 2}},
}


class Pruner:
    """What a sweep's ``TrialPruner`` looks like to the runs app: a callback with ``pruned``."""

    def __init__(self):
        self.pruned = False


@pytest.fixture
def pruner(monkeypatch):
    made = []

    def factory(run):
        made.append(Pruner())
        return [made[-1]]

    monkeypatch.setattr(execution, "run_callback_factories", [*execution.run_callback_factories, factory])
    return made


def test_rank_0_runs_the_pruner_and_its_outcome_says_pruned(people, pruner, monkeypatch, tmp_path):
    import layerlab.train.runner as runner

    run = run_create(project=people["project"], user=people["owner"], config=GROUP, name="g")
    lease = execution.run_claim(run.id)

    def engine(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        (stopper,) = [cb for cb in callbacks if isinstance(cb, Pruner)]  # on rank 0, once
        stopper.pruned = True  # the study said prune at epoch 2
        return {"status": "completed", "epochs": 2}

    monkeypatch.setattr(runner, "train_experiment", engine)
    monkeypatch.setenv("RANK", "0")
    spec = tmp_path / "spec.json"
    outcome = tmp_path / "outcome.json"
    spec.write_text(json.dumps({
        "run_id": run.id, "lease": lease, "max_seconds": 0, "config": GROUP, "run_dir": str(tmp_path / "r"),
        "resume": False, "cache_dir": None, "outcome": str(outcome),
    }))  # fmt: skip
    assert group.rank_main(str(spec)) == 0
    result = json.loads(outcome.read_text())
    assert result["pruned"] is True and result["summary"]["epochs"] == 2


def test_a_group_run_whose_rank_0_was_pruned_ends_pruned(people, pruner, monkeypatch):
    run = run_create(project=people["project"], user=people["owner"], config=GROUP, name="g")

    def torchrun(command, env, check):  # the group trained two epochs, then rank 0's pruner stopped it
        spec = json.loads(Path(command[-1]).read_text(encoding="utf-8"))
        with open(spec["outcome"], "w", encoding="utf-8") as handle:
            json.dump({"summary": {"status": "completed", "epochs": 2}, "pruned": True}, handle)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(group.subprocess, "run", torchrun)
    execution.run_claim(run.id)
    Run.objects.filter(id=run.id).update(status=Run.Status.QUEUED)
    assert execution.run_execute(run_id=run.id) == Run.Status.PRUNED
    assert Run.objects.get(id=run.id).status == Run.Status.PRUNED
