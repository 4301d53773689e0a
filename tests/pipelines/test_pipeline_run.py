"""Pipelines on Luigi's local scheduler, with the stages' work stubbed: reruns, changes, failures, records."""

from __future__ import annotations

import copy

import pytest

from layerlab.apps.pipelines.models import Pipeline, PipelineStage
from layerlab.apps.runs.models import Run
from layerlab.pipelines import stages
from layerlab.pipelines.runner import pipeline_run
from layerlab.pipelines.spec import pipeline_parse

pytestmark = pytest.mark.django_db(transaction=True)

real_actions = dict(stages.ACTIONS)  # before the fixture stubs them


def run_it(people, data):
    pipeline = pipeline_parse(copy.deepcopy(data))
    return pipeline_run(pipeline, user=people["owner"], project=people["project"])


def states(outcome) -> dict:
    return {row["name"]: row["state"] for row in outcome.stages}


def test_every_stage_runs_once_in_order_and_is_recorded(people, calls, chain):
    outcome = run_it(people, chain)
    assert outcome.exit_code == 0, outcome.failures
    assert calls.index("spiral") < calls.index("base") < calls.index("tuned") < calls.index("holdout")
    assert sorted(calls) == sorted(chain["stages"]) and set(states(outcome).values()) == {"done"}
    tuned = PipelineStage.objects.get(name="tuned")
    assert tuned.run.name == "tuned" and tuned.result["metrics"] == {"val_accuracy": 0.9}
    assert PipelineStage.objects.get(name="holdout").run_id == tuned.run_id
    assert PipelineStage.objects.get(name="summary").result == {"seen": ["base", "holdout", "onnx"]}
    assert Pipeline.objects.get().state == "done"


def test_an_unchanged_rerun_does_nothing(people, calls, chain):
    run_it(people, chain)
    calls.clear()
    runs = Run.objects.count()
    outcome = run_it(people, chain)
    assert outcome.exit_code == 0 and calls == [] and Run.objects.count() == runs
    assert set(states(outcome).values()) == {"skipped"}


def test_a_change_reruns_that_stage_and_what_depends_on_it(people, calls, chain):
    run_it(people, chain)
    calls.clear()
    changed = copy.deepcopy(chain)
    changed["stages"]["tuned"]["config"]["train"]["lr"] = 0.002
    outcome = run_it(people, changed)
    assert outcome.exit_code == 0
    assert sorted(calls) == ["holdout", "onnx", "summary", "tuned"]
    assert states(outcome)["spiral"] == states(outcome)["base"] == "skipped"
    assert Pipeline.objects.count() == 1


def test_a_deleted_run_makes_its_stage_run_again(people, calls, chain):
    run_it(people, chain)
    calls.clear()
    PipelineStage.objects.get(name="base").run.delete()
    run_it(people, chain)
    assert calls[0] == "base" and "spiral" not in calls


def test_a_failing_stage_exits_non_zero_in_one_line_and_a_fixed_rerun_starts_at_once(people, calls, chain):
    broken = copy.deepcopy(chain)
    broken["stages"]["tuned"]["config"]["fail"] = True
    outcome = run_it(people, broken)
    assert outcome.exit_code == 1
    assert outcome.failures == ["stage 'tuned' (finetune) failed: data: the data ran out"]
    shown = states(outcome)
    assert shown["base"] == "done" and shown["tuned"] == "failed"
    assert shown["holdout"] == shown["onnx"] == shown["summary"] == "not_run"
    assert Pipeline.objects.get().state == "failed"

    calls.clear()
    outcome = run_it(people, chain)
    assert outcome.exit_code == 0 and "base" not in calls and calls[0] == "tuned"


def test_training_stages_are_jobs_on_the_labs_queue(people, settings, monkeypatch):
    """Without ``local`` a train stage is a queued run that a worker executes (here: the immediate backend)."""
    from layerlab.apps.runs import execution

    def engine(cfg, run_dir, *, callbacks, **_):
        (callback,) = callbacks
        callback.on_run_start(None, {"epochs": 1})
        callback.on_epoch_end(None, 1, {"epoch": 1, "val_accuracy": 0.75})
        summary = {"epochs": 1, "val_accuracy": 0.75}
        callback.on_run_end(None, summary)
        return summary

    monkeypatch.setattr(execution, "train_experiment", engine)
    settings.TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
    data = {"name": "queued", "stages": {"base": {"kind": "train", "config": {"train": {"epochs": 1}}}}}
    outcome = pipeline_run(
        pipeline_parse(data), user=people["owner"], project=people["project"], poll_seconds=0.01
    )
    assert outcome.exit_code == 0, outcome.failures
    run = Run.objects.get()
    assert run.origin == Run.Origin.SERVER and run.status == Run.Status.SUCCEEDED and run.worker
    assert PipelineStage.objects.get(name="base").result["metrics"]["val_accuracy"] == 0.75


def test_a_run_that_no_worker_takes_times_out_in_one_line(people, calls, chain, monkeypatch):
    monkeypatch.setattr(stages, "ACTIONS", real_actions)
    data = {
        "name": "stuck",
        "stages": {"base": {"kind": "train", "timeout": 0.05, "config": {"train": {"epochs": 1}}}},
    }
    outcome = pipeline_run(
        pipeline_parse(data), user=people["owner"], project=people["project"], poll_seconds=0.01
    )
    assert outcome.exit_code == 1
    (line,) = outcome.failures
    assert (
        line.startswith("stage 'base' (train) failed: run ")
        and "did not finish within 0.05 s (status queued)" in line
    )


def test_a_sweep_stage_gives_its_best_run_to_the_next_stage(people, monkeypatch):
    """A sweep stage is a sweep of the lab (Optuna, trials as runs); ``evaluate`` reads its best trial's run."""
    from layerlab.apps.runs import execution
    from layerlab.apps.sweeps.models import Sweep

    def engine(cfg, run_dir, *, callbacks, **_):
        accuracy = 0.5 + cfg.train.lr * 10  # the larger rate wins
        for callback in callbacks:
            callback.on_run_start(None, {"epochs": 1})
            callback.on_epoch_end(None, 1, {"epoch": 1, "val_accuracy": accuracy})
        summary = {"epochs": 1, "val_accuracy": accuracy}
        for callback in callbacks:
            callback.on_run_end(None, summary)
        return summary

    monkeypatch.setattr(execution, "train_experiment", engine)
    seen = {}
    monkeypatch.setattr(
        stages, "ACTIONS", {**real_actions, "evaluate": lambda lab, stage, inputs: seen.update(inputs) or {}}
    )
    sweep = {
        "method": "grid",
        "parameters": {"train.lr": [0.01, 0.03]},
        "metric": "val_accuracy",
        "trials": 2,
    }
    data = {
        "name": "swept",
        "stages": {
            "search": {"kind": "sweep", "config": {"train": {"epochs": 1}}, "sweep": sweep, "timeout": 60},
            "check": {"kind": "evaluate", "run": "search", "data": {"source": "spiral"}},
        },
    }
    pipeline = pipeline_parse(data)
    outcome = pipeline_run(
        pipeline, user=people["owner"], project=people["project"], local=True, poll_seconds=0.01
    )
    assert outcome.exit_code == 0, outcome.failures
    best = Run.objects.get(id=seen["run"]["run"])
    assert best.config["train"]["lr"] == 0.03 and seen["run"]["params"] == {"train.lr": 0.03}
    assert Sweep.objects.get().status == "finished" and Run.objects.count() == 2
