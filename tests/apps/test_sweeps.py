"""Sweeps: the sweep section's checks, ask/tell over Optuna's storage, exactly-once telling, pruning."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Run
from layerlab.apps.sweeps import study as studies
from layerlab.apps.sweeps.models import Sweep, SweepTrial
from layerlab.apps.sweeps.services import sweep_create, sweep_reconcile, sweep_trial_tell
from layerlab.core.errors import ConfigError

pytestmark = pytest.mark.django_db(transaction=True)

BASE = {"model": {"preset": "mlp"}, "train": {"epochs": 4}}


def sweep_section(**extra):
    section = {
        "method": "random",
        "parameters": {"train.lr": {"distribution": "loguniform", "low": 1e-3, "high": 1e-1}},
        "metric": "val_accuracy",
        "goal": "maximize",
        "trials": 4,
        "parallel": 2,
        "seed": 1,
    }
    section.update(extra)
    return section


def fake_engine(accuracy):
    """Drives every callback like the engine; ``accuracy(cfg, epoch)`` is the epoch's val_accuracy."""

    def train(cfg, run_dir, *, resume, device, callbacks, cache_dir):
        for cb in callbacks:
            cb.on_run_start(None, {"epochs": cfg.train.epochs})
        epoch = 0
        for epoch in range(1, cfg.train.epochs + 1):
            row = {"epoch": epoch, "val_accuracy": accuracy(cfg, epoch), "val_loss": 1.0}
            for cb in callbacks:
                cb.on_epoch_end(None, epoch, row)
            ckpt = Path(run_dir) / "checkpoints" / f"epoch-{epoch:04d}.ckpt"
            ckpt.parent.mkdir(parents=True, exist_ok=True)
            ckpt.write_bytes(b"x")
            callbacks[0].on_checkpoint(None, ckpt, epoch, "numbered")
            if any(cb.should_stop(None) for cb in callbacks[1:]):
                break
        summary = {"epochs": epoch, "verdict": "fine"}
        for cb in callbacks:
            cb.on_run_end(None, summary)
        return summary

    return train


def drain(sweep: Sweep) -> list[int]:
    """Execute queued trial runs (the hook asks the next ones) until none is queued; their ids."""
    done = []
    while True:
        run = Run.objects.filter(sweep_trial__sweep=sweep, status=Run.Status.QUEUED).order_by("id").first()
        if run is None:
            return done
        execution.run_execute(run_id=run.id)
        done.append(run.id)


def test_create_queues_parallel_trials_as_runs(people):
    sweep = sweep_create(
        project=people["project"], user=people["owner"], config={**BASE, "sweep": sweep_section()}
    )
    trials = list(sweep.trial_rows.select_related("run"))
    assert [t.number for t in trials] == [0, 1]
    assert all(t.run.status == Run.Status.QUEUED and t.run.project == people["project"] for t in trials)
    assert trials[0].run.config["train"]["lr"] == pytest.approx(trials[0].params["train.lr"])
    assert len(studies.study_load(sweep).trials) == 2


def test_every_trial_runs_and_is_told_once(people, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(lambda cfg, e: cfg.train.lr * e))
    sweep = sweep_create(
        project=people["project"], user=people["owner"], config={**BASE, "sweep": sweep_section()}
    )
    assert len(drain(sweep)) == 4
    sweep.refresh_from_db()
    assert sweep.status == Sweep.Status.FINISHED
    rows = list(sweep.trial_rows.all())
    assert sorted(t.number for t in rows) == [0, 1, 2, 3]
    assert all(t.state == SweepTrial.State.COMPLETE for t in rows)
    assert rows[0].value == pytest.approx(rows[0].params["train.lr"] * 4)
    study = studies.study_load(sweep)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 4
    # Telling again (a resumed run's hook, a reconcile) changes nothing: no duplicated trial.
    assert not any(sweep_trial_tell(trial=t) for t in rows)
    assert sweep_reconcile(sweep=sweep) == 0
    assert len(studies.study_load(sweep).trials) == 4


def test_a_finished_run_whose_tell_was_lost_is_told_by_reconcile(people, monkeypatch):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(lambda cfg, e: 0.5))
    from layerlab.apps.runs import services as run_services

    sweep = sweep_create(
        project=people["project"],
        user=people["owner"],
        config={**BASE, "sweep": sweep_section(trials=1, parallel=1)},
    )
    monkeypatch.setattr(run_services, "run_finished_hooks", [])  # the worker died before its hook
    drain(sweep)
    (trial,) = sweep.trial_rows.all()
    assert trial.state == SweepTrial.State.RUNNING
    assert sweep_reconcile(sweep=sweep) == 1
    trial.refresh_from_db()
    sweep.refresh_from_db()
    assert (trial.state, trial.value, sweep.status) == (SweepTrial.State.COMPLETE, 0.5, Sweep.Status.FINISHED)


def test_a_pruned_trial_is_marked_pruned_not_failed(people, monkeypatch):
    # Accuracy grows with lr; the median pruner stops a trial below the median of those before it.
    monkeypatch.setattr(execution, "train_experiment", fake_engine(lambda cfg, e: cfg.train.lr))
    section = sweep_section(
        method="grid",
        parameters={"train.lr": [0.5, 0.4, 0.3, 0.2, 0.1, 0.05]},
        trials=6,
        parallel=1,
        pruner="median",
    )
    sweep = sweep_create(project=people["project"], user=people["owner"], config={**BASE, "sweep": section})
    drain(sweep)
    rows = {t.params["train.lr"]: t for t in sweep.trial_rows.select_related("run")}
    assert len(rows) == 6
    pruned = [t for t in rows.values() if t.state == SweepTrial.State.PRUNED]
    assert pruned and all(t.run.status == Run.Status.PRUNED and t.epochs < 4 for t in pruned)
    assert all(t.state in (SweepTrial.State.PRUNED, SweepTrial.State.COMPLETE) for t in rows.values())
    states = {t.state for t in studies.study_load(sweep).trials}
    assert optuna.trial.TrialState.PRUNED in states and optuna.trial.TrialState.FAIL not in states


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"parameters": {"train.lrr": [0.1]}}, "did you mean 'train.lr'"),
        ({"parameters": {"train.lr": {"distribution": "uniform", "low": 0.5, "high": 0.1}}}, "inverted"),
        ({"parameters": {"train.lr": {"distribution": "uniform", "low": 0.1, "high": 0.1}}}, "empty"),
        ({"parameters": {"train.lr": []}}, "empty"),
        ({"method": "grid", "parameters": {"train.lr": [0.1, 0.2, 0.3]}, "trials": 2}, "more than trials"),
        ({"method": "bayes"}, "unknown method"),
        ({"metric": "val_acc"}, "did you mean 'val_accuracy'"),
        ({"pruner": "sha"}, "unknown pruner"),
        (
            {
                "method": "grid",
                "parameters": {"train.lr": {"distribution": "uniform", "low": 0.1, "high": 1}},
            },
            "no grid",
        ),
        (
            {
                "method": "grid",
                "parameters": {"train.epochs": {"distribution": "int", "low": 1, "high": 10**12}},
            },
            "more than",
        ),
        ({"parameters": {"train.epochs": {"distribution": "int", "low": 1.5, "high": 3}}}, "whole numbers"),
        ({"parameters": {"train.lr": {"distribution": "loguniform", "low": 0, "high": 1}}}, "low > 0"),
        ({"trials": 0}, "sweep.trials"),
    ],
)
def test_bad_input_is_one_line_and_leaves_nothing(people, section, words):
    with pytest.raises(ConfigError) as info:
        sweep_create(
            project=people["project"],
            user=people["owner"],
            config={**BASE, "sweep": sweep_section(**section)},
        )
    assert words in info.value.one_line() and "\n" not in info.value.one_line()
    assert not Sweep.objects.exists() and not Run.objects.exists()
    assert optuna.get_all_study_names(storage=studies.storage()) == []


def test_an_accuracy_objective_of_a_regression_config_is_refused(people):
    config = {**BASE, "train": {**BASE["train"], "task": "regression", "loss": "mse"}}
    with pytest.raises(ConfigError) as info:
        sweep_create(
            project=people["project"], user=people["owner"], config={**config, "sweep": sweep_section()}
        )
    assert "reports no accuracy" in info.value.one_line() and "val_loss" in info.value.one_line()
    assert not Sweep.objects.exists() and not Run.objects.exists()


def test_a_trial_config_the_engine_refuses_removes_the_sweep(people):
    section = sweep_section(parameters={"train.batch_size": [0]}, method="grid", trials=1)
    with pytest.raises(ConfigError):
        sweep_create(project=people["project"], user=people["owner"], config={**BASE, "sweep": section})
    assert not Sweep.objects.exists() and not Run.objects.exists()
    assert optuna.get_all_study_names(storage=studies.storage()) == []


def test_api_creates_follows_and_scopes_sweeps(people, client_for):
    body = {"project": people["project"].id, "config": {**BASE, "sweep": sweep_section()}, "name": "lr"}
    owner = client_for(people["owner"])
    made = owner.post("/api/sweeps/", body, format="json")
    assert made.status_code == 201, made.content
    sweep_id = made.json()["id"]
    assert made.json()["counts"]["running"] == 2
    trials = owner.get(f"/api/sweeps/{sweep_id}/trials/").json()
    assert trials["columns"][-1] == "train.lr" and len(trials["rows"]) == 2
    assert client_for(people["viewer"]).get(f"/api/sweeps/{sweep_id}/").status_code == 200
    assert client_for(people["viewer"]).post("/api/sweeps/", body, format="json").status_code == 403
    assert client_for(people["stranger"]).get(f"/api/sweeps/{sweep_id}/").status_code == 404
    assert owner.get(f"/api/sweeps/{sweep_id}/importances/").json() == {}
    assert owner.post(f"/api/sweeps/{sweep_id}/cancel/").json()["status"] == "cancelled"


def test_api_bad_sweep_is_400_one_line(people, client_for):
    section = sweep_section(parameters={"train.lrr": [0.1]})
    body = {"project": people["project"].id, "config": {**BASE, "sweep": section}}
    answer = client_for(people["owner"]).post("/api/sweeps/", body, format="json")
    assert answer.status_code == 400
    assert answer.json()["error"] == "config_error" and "train.lr" in answer.json()["detail"]
    assert not Sweep.objects.exists()


@pytest.mark.parametrize("method", ["grid", "tpe", "cmaes"])
def test_each_method_runs_its_trials(people, monkeypatch, method):
    monkeypatch.setattr(execution, "train_experiment", fake_engine(lambda cfg, e: cfg.train.lr))
    parameters = {
        "train.lr": [0.1, 0.01, 0.001]
        if method == "grid"
        else {"distribution": "uniform", "low": 0.001, "high": 0.1},
        "train.batch_size": {"distribution": "int", "low": 8, "high": 9},
    }
    section = sweep_section(
        method=method, parameters=parameters, trials=6 if method == "grid" else 3, pruner="asha"
    )
    sweep = sweep_create(project=people["project"], user=people["owner"], config=BASE, sweep=section)
    drain(sweep)
    sweep.refresh_from_db()
    rows = list(sweep.trial_rows.all())
    assert sweep.status == Sweep.Status.FINISHED and len(rows) == sweep.trials
    if method == "grid":  # every point once
        assert len({(t.params["train.lr"], t.params["train.batch_size"]) for t in rows}) == 6


def test_the_shipped_example_is_a_valid_sweep():
    import yaml

    from layerlab.apps.sweeps.spec import keys_check, spec_from_mapping, split_config
    from layerlab.train.config import experiment_from_mapping

    root = Path(__file__).resolve().parents[2]
    base, section = split_config(yaml.safe_load((root / "examples/sweeps/spiral-sweep.yaml").read_text()))
    spec = spec_from_mapping(section)
    keys_check(spec, experiment_from_mapping(base).to_dict())
    assert (spec.method, spec.pruner, len(spec.parameters)) == ("tpe", "asha", 3)


def test_a_cancelled_sweep_asks_no_more_trials_even_from_a_stale_copy(people):
    from layerlab.apps.sweeps.services import sweep_cancel, sweep_fill

    sweep = sweep_create(
        project=people["project"], user=people["owner"], config={**BASE, "sweep": sweep_section()}
    )
    stale = Sweep.objects.get(id=sweep.id)
    sweep_cancel(sweep=sweep)
    assert sweep_fill(sweep=stale) == []
    assert Sweep.objects.get(id=sweep.id).status == Sweep.Status.CANCELLED
    assert sweep.trial_rows.count() == 2
    assert set(Run.objects.values_list("status", flat=True)) == {Run.Status.CANCELLED}
