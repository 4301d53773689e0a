"""A CLI experiment recorded in the store: with ``--parallel`` each trial is recorded as it finishes, and a rerun
after a kill brings the lab's rows up to date with the trials that finished, redoing none of them."""

from __future__ import annotations

import copy

import pytest

from layerlab.apps.experiments.local import LocalExperimentRecorder
from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.runs.models import Run
from layerlab.research.local import run_local
from layerlab.research.spec import parse_experiment

pytestmark = pytest.mark.django_db(transaction=True)

CONFIG = {
    "name": "tiny",
    "data": {
        "source": "spiral",
        "classes": 3,
        "points_per_class": 15,
        "split": {"method": "random", "val": 0.2, "test": 0.2},
    },
    "model": {"preset": "mlp", "options": {"hidden": [6]}},
    "train": {"epochs": 2, "batch_size": 32, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1, 2]},
}


def recorded() -> dict[str, tuple[str, str]]:
    rows = ExperimentTrial.objects.select_related("run")
    return {r.key: (r.status, r.run.status if r.run else "") for r in rows}


def test_parallel_trials_are_recorded_as_each_finishes(people, tmp_path):
    spec = parse_experiment(copy.deepcopy(CONFIG))
    recorder = LocalExperimentRecorder(spec, tmp_path / "exp", username="owner", project="lab", warn=print)
    seen = []

    def on_event(event):
        recorder.on_event(event)
        if event["event"] == "trial_finished":
            seen.append(recorded()[event["key"]])

    outcome = run_local(spec, tmp_path / "exp", parallel=2, on_event=on_event)
    recorder.finish(outcome.document)
    assert seen == [("completed", "succeeded")] * 3
    assert Experiment.objects.get().status == Experiment.Status.FINISHED


def test_a_rerun_records_the_trials_a_killed_call_finished_but_never_told_the_lab(people, tmp_path):
    """The first call is stopped right after seed=1's trial.json is written, before the lab hears of it
    (a kill between the two); the rerun trains nothing and brings seed=1's row and run up to date."""
    spec = parse_experiment(copy.deepcopy(CONFIG), ["experiment.seeds=[0,1]"])
    first = LocalExperimentRecorder(spec, tmp_path / "exp", username="owner", project="lab", warn=print)

    def killed_at_seed_1(event):
        if event["event"] == "trial_finished" and event["key"] == "seed=1":
            raise KeyboardInterrupt
        first.on_event(event)

    with pytest.raises(KeyboardInterrupt):
        run_local(spec, tmp_path / "exp", on_event=killed_at_seed_1, callbacks_for=first.callbacks_for)
    first.finish(None, "interrupted")  # as the CLI does on Ctrl-C
    assert recorded() == {"seed=0": ("completed", "succeeded"), "seed=1": ("running", "cancelled")}

    again = LocalExperimentRecorder(spec, tmp_path / "exp", username="owner", project="lab", warn=print)
    outcome = run_local(spec, tmp_path / "exp", on_event=again.on_event, callbacks_for=again.callbacks_for)
    again.finish(outcome.document)
    assert outcome.ran == [] and outcome.resumed == []
    assert recorded() == {"seed=0": ("completed", "succeeded"), "seed=1": ("completed", "succeeded")}
    assert Run.objects.count() == 2 and Experiment.objects.get().status == Experiment.Status.FINISHED
    assert Run.objects.get(experiment_trial__key="seed=1").summary["test_accuracy"] is not None
