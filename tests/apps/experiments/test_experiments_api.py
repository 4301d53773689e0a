"""The experiments app and API: create (trials queue as runs), the finished-run hook advancing it, the report
and its PNGs, permissions (404 for what one may not see), cancel, delete, one-line errors."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import pytest

from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.experiments.probes import experiment_probe_execute
from layerlab.apps.experiments.services import active_seconds, experiment_advance, experiment_create
from layerlab.apps.journal.models import Entry
from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Run
from layerlab.core.errors import DataError
from layerlab.research.base import ExperimentKind, Report, Trial, register_kind
from layerlab.research.probes import register_probe

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
    "experiment": {"kind": "seeds", "seeds": [0, 1]},
}


def config(**experiment):
    data = copy.deepcopy(CONFIG)
    data["experiment"].update(experiment)
    return data


def drain(experiment: Experiment) -> list[int]:
    """Execute queued trial runs in this process (the hook queues the next ones) until none is queued."""
    done = []
    while True:
        run = (
            Run.objects.filter(experiment_trial__experiment=experiment, status=Run.Status.QUEUED)
            .order_by("id")
            .first()
        )
        if run is None:
            return done
        execution.run_execute(run_id=run.id)
        done.append(run.id)


def test_create_queues_each_trial_as_a_tagged_run(people):
    experiment = experiment_create(project=people["project"], user=people["owner"], config=config())
    rows = list(experiment.trial_rows.select_related("run"))
    assert [r.key for r in rows] == ["seed=0", "seed=1"]
    assert all(r.run.status == Run.Status.QUEUED and r.run.project == people["project"] for r in rows)
    assert [r.run.config["seed"] for r in rows] == [0, 1]
    assert set(rows[0].run.tags.values_list("name", flat=True)) == {
        "experiment",
        f"experiment:{experiment.id}",
    }


def test_trials_finishing_advance_it_to_a_report_and_a_journal_entry(people, client_for):
    experiment = experiment_create(
        project=people["project"], user=people["owner"], config=config(), name="two seeds"
    )
    assert len(drain(experiment)) == 2
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    assert set(experiment.trial_rows.values_list("status", flat=True)) == {ExperimentTrial.Status.COMPLETED}
    assert experiment_advance(experiment=experiment) == 0  # nothing is queued twice
    entry = Entry.objects.get(title__startswith=f"Experiment {experiment.id} finished")
    assert "test_accuracy" in entry.body and "| seed |" in entry.body

    api = client_for(people["viewer"])
    report = api.get(f"/api/experiments/{experiment.id}/report/").json()
    assert report["columns"][:3] == ["seed", "status", "test_accuracy"]
    assert [row["seed"] for row in report["rows"]] == [0, 1]
    assert report["seeds"] == [0, 1] and report["trials"][1]["run_id"]
    assert report["charts"][0]["config"]["type"] == "bar"
    png = api.get(f"/api/experiments/{experiment.id}/plots/per_seed/")
    assert png.status_code == 200 and png["Content-Type"] == "image/png" and png.content[:4] == b"\x89PNG"
    assert api.get(f"/api/experiments/{experiment.id}/plots/nothing/").status_code == 404
    detail = api.get(f"/api/experiments/{experiment.id}/").json()
    assert detail["status"] == "finished" and detail["counts"]["completed"] == 2
    assert [t["key"] for t in detail["trials"]] == ["seed=0", "seed=1"]


def test_an_experiments_seconds_leave_out_the_time_no_trial_ran(people):
    """Between a cancel and a resume nothing runs: the report's seconds are the union of its runs'
    executions, not the time since it was created."""
    import datetime

    experiment = experiment_create(project=people["project"], user=people["owner"], config=config())
    first, second = [row.run for row in experiment.trial_rows.select_related("run").order_by("key")]
    t0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    at = lambda s: t0 + datetime.timedelta(seconds=s)  # noqa: E731
    Run.objects.filter(id=first.id).update(started_at=at(0), finished_at=at(10))
    Run.objects.filter(id=second.id).update(started_at=at(5), finished_at=at(12))  # overlaps the first
    assert active_seconds(experiment) == 12
    Run.objects.filter(id=second.id).update(started_at=at(3600), finished_at=at(3630))  # resumed an hour on
    assert active_seconds(experiment) == 40


def test_api_create_list_and_permissions(people, client_for):
    owner, editor, viewer, stranger = (
        client_for(people[n]) for n in ("owner", "editor", "viewer", "stranger")
    )
    body = {"project": people["project"].id, "config": config(), "overrides": ["experiment.seeds=[3]"]}
    assert viewer.post("/api/experiments/", body, format="json").status_code == 403
    created = editor.post("/api/experiments/", body, format="json")
    assert created.status_code == 201, created.content
    exp_id = created.json()["id"]
    assert [t["key"] for t in created.json()["trials"]] == ["seed=3"]
    assert [e["id"] for e in viewer.get("/api/experiments/").json()["results"]] == [exp_id]
    assert stranger.get("/api/experiments/").json()["results"] == []
    for path in (f"/api/experiments/{exp_id}/", f"/api/experiments/{exp_id}/report/"):
        assert stranger.get(path).status_code == 404
    assert stranger.post(f"/api/experiments/{exp_id}/cancel/").status_code == 404
    assert stranger.delete(f"/api/experiments/{exp_id}/").status_code == 404
    assert viewer.post(f"/api/experiments/{exp_id}/cancel/").status_code == 403
    assert owner.get(f"/api/experiments/{exp_id}/report/").status_code == 404  # no report yet
    assert owner.delete(f"/api/experiments/{exp_id}/").status_code == 400  # running: cancel first
    cancelled = editor.post(f"/api/experiments/{exp_id}/cancel/")
    assert cancelled.json()["status"] == "cancelled"
    assert Run.objects.get(experiment_trial__experiment_id=exp_id).status == Run.Status.CANCELLED
    assert editor.delete(f"/api/experiments/{exp_id}/").status_code == 403  # deleting needs the owner
    assert owner.delete(f"/api/experiments/{exp_id}/").status_code == 204
    assert not Experiment.objects.filter(id=exp_id).exists()


def test_a_config_as_yaml_text_is_accepted(people, client_for):
    text = "model: {preset: mlp}\ntrain: {epochs: 1}\nexperiment: {kind: seeds, seeds: [5]}\n"
    created = client_for(people["owner"]).post(
        "/api/experiments/", {"project": people["project"].id, "config": text}, format="json"
    )
    assert created.status_code == 201, created.content
    assert created.json()["kind"] == "seeds" and created.json()["trials"][0]["key"] == "seed=5"


@pytest.mark.parametrize(
    ("experiment", "detail"),
    [
        ({"kind": "sed"}, "experiment.kind: unknown experiment kind 'sed'; did you mean 'seeds'?"),
        ({"seedz": [1]}, "experiment: unknown key 'seedz'; did you mean 'seeds'?"),
        ({"seeds": [1, 1]}, "experiment.seeds: a seed is given twice; list each seed once"),
    ],
)
def test_bad_experiments_are_one_line_400s_and_create_nothing(people, client_for, experiment, detail):
    data = config()
    data["experiment"] = {"kind": "seeds", **experiment}
    answer = client_for(people["owner"]).post(
        "/api/experiments/", {"project": people["project"].id, "config": data}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json() == {"error": "config_error", "detail": detail}
    assert not Experiment.objects.exists() and not Run.objects.exists()


def test_a_kind_option_naming_a_server_directory_is_refused_before_it_is_read(
    people, client_for, monkeypatch
):
    """experiment.run (the codes kind's trained source) is a path on the server: like data paths, not for users."""
    opened = []
    monkeypatch.setattr("layerlab.inference.trained.load_trained", lambda *a, **k: opened.append(a))
    data = config()
    data["experiment"] = {"kind": "codes", "run": "/etc"}
    answer = client_for(people["owner"]).post(
        "/api/experiments/", {"project": people["project"].id, "config": data}, format="json"
    )
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(
        "experiment.run: experiment.run names a directory on the server"
    )
    assert opened == [] and not Experiment.objects.exists() and not Run.objects.exists()


def test_a_trial_the_lab_refuses_rolls_the_whole_experiment_back(people):
    data = config()
    data["data"] = {"source": "imagefolder", "path": "/etc"}  # no server path is readable through a config
    with pytest.raises(DataError, match="data.path: the path is not inside a folder granted"):
        experiment_create(project=people["project"], user=people["owner"], config=data)
    assert not Experiment.objects.exists() and not Run.objects.exists()


@dataclass
class ProbedOptions:
    value: int = 3


@register_kind
class Probed(ExperimentKind):
    """A test kind: one training trial, then a probe reading its run directory."""

    name = "test_probed"
    Options = ProbedOptions

    def plan(self, base, options, done):
        return [
            Trial("train", dict(base), labels={"what": "train"}),
            Trial(
                "tuned",
                {**base, "model": {**base["model"], "init_from": "trial:train"}},
                labels={"what": "tuned"},
                needs=("train",),
            ),
            Trial(
                "probe",
                {},
                labels={"what": "probe"},
                needs=("train",),
                probe="test_read_run",
                probe_args={"value": options.value},
            ),
        ]

    def report(self, base, options, results):
        rows = [{"key": k, "status": r.status, "value": r.summary.get("value")} for k, r in results.items()]
        return Report(title="probed", columns=["key", "status", "value"], rows=rows, findings=["probed"])


@register_probe("test_read_run")
def read_run(args, inputs, run_dir, seed):
    trained = inputs["train"].run_dir
    return {"value": args["value"], "has_network": (trained / "network.json").is_file(), "seed": seed}


def test_a_probe_trial_runs_as_a_job_and_is_recorded_as_a_run_without_checkpoints(people):
    data = config()
    data["experiment"] = {"kind": "test_probed", "value": 9}
    experiment = experiment_create(project=people["project"], user=people["owner"], config=data)
    drain(experiment)  # the training trials; the first one's finish queues the probe's run and job
    tuned = ExperimentTrial.objects.get(experiment=experiment, key="tuned")
    train = ExperimentTrial.objects.get(experiment=experiment, key="train")
    assert tuned.run.config["model"]["init_from"] == f"run:{train.run_id}"  # trial:train resolved
    assert tuned.status == ExperimentTrial.Status.COMPLETED and tuned.run.summary["init_from"]
    probe = ExperimentTrial.objects.get(experiment=experiment, key="probe")
    assert probe.run.status == Run.Status.RUNNING and probe.run.origin == Run.Origin.CLIENT
    assert experiment_probe_execute(trial_id=probe.id) == Run.Status.SUCCEEDED
    probe.refresh_from_db()
    assert probe.status == ExperimentTrial.Status.COMPLETED
    assert probe.run.summary["value"] == 9 and probe.run.summary["has_network"] is True
    assert not probe.run.checkpoints.exists()
    experiment.refresh_from_db()
    assert experiment.status == Experiment.Status.FINISHED
    assert {r["key"]: r["value"] for r in experiment.report["rows"]}["probe"] == 9
    assert [t["key"] for t in experiment.report["trials"]] == ["train", "tuned", "probe"]


def test_the_cli_recorder_records_trials_trained_elsewhere_with_their_metrics(people, tmp_path):
    from layerlab.apps.experiments.local import LocalExperimentRecorder
    from layerlab.apps.runs.models import MetricPoint
    from layerlab.research.local import run_local
    from layerlab.research.spec import parse_experiment

    spec = parse_experiment(config(seeds=[4]))
    recorder = LocalExperimentRecorder(spec, tmp_path / "exp", username="owner", project="lab", warn=print)
    outcome = run_local(spec, tmp_path / "exp", on_event=recorder.on_event)  # no live recorder: as in a pool
    recorder.finish(outcome.document)
    experiment = Experiment.objects.get(origin=Experiment.Origin.CLI)
    assert experiment.status == Experiment.Status.FINISHED and experiment.project == people["project"]
    row = experiment.trial_rows.get()
    assert row.key == "seed=4" and row.status == "completed" and row.run.status == Run.Status.SUCCEEDED
    assert row.run.origin == Run.Origin.CLI and row.run.summary["test_accuracy"] is not None
    assert (
        MetricPoint.objects.filter(run=row.run, name="val_loss").count() == 2
    )  # replayed from metrics.jsonl
    again = LocalExperimentRecorder(spec, tmp_path / "exp", username="owner", project="lab", warn=print)
    assert again.experiment_id == experiment.id  # a rerun into the same directory continues the row
