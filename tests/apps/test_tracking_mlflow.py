"""MLflow's tracking protocol, driven by the real ``mlflow`` client (mlflow-skinny) against a live lab."""

from __future__ import annotations

import pytest

mlflow = pytest.importorskip("mlflow")
from mlflow.exceptions import MlflowException  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from layerlab.apps.accounts.services import user_token  # noqa: E402
from layerlab.apps.runs.models import Run  # noqa: E402


@pytest.fixture
def tracking(people, live_server, monkeypatch):
    """``tracking(user)`` -> an MlflowClient signed in as that user (``MLFLOW_TRACKING_TOKEN``)."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_NAME", raising=False)
    # The fluent API remembers the experiment set by an earlier test (of another database).
    monkeypatch.setattr(mlflow.tracking.fluent, "_active_experiment_id", None)
    mlflow.set_tracking_uri(live_server.url)

    def sign_in(name: str) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", user_token(username=name))
        return MlflowClient(tracking_uri=live_server.url)

    yield sign_in
    if mlflow.active_run():
        mlflow.end_run()
    mlflow.set_tracking_uri(None)
    # Close the client's kept-alive connections before the live server stops (else its thread, closing
    # them later, trips over the test's database connection).
    from mlflow.utils import request_utils

    request_utils._cached_get_request_session.cache_clear()


def test_fluent_client_logs_a_run_into_a_project(tracking, people):
    client = tracking("owner")
    experiment_id = mlflow.set_experiment("mnist-sweep").experiment_id
    with mlflow.start_run(run_name="first") as active:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"batch_size": 32, "optimizer": "adam"})
        mlflow.log_metric("loss", 0.9, step=0)
        mlflow.log_metrics({"loss": 0.5, "val/accuracy": 0.75}, step=1)
        mlflow.log_metric("loss", 0.25, step=2)
        mlflow.set_tags({"team": "vision", "note with space": "kept"})
        run_id = active.info.run_id

    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "first"
    assert run.info.experiment_id == experiment_id
    assert run.data.params == {"lr": "0.01", "batch_size": "32", "optimizer": "adam"}
    assert run.data.metrics == {"loss": 0.25, "val/accuracy": 0.75}
    assert run.data.tags["team"] == "vision" and run.data.tags["note with space"] == "kept"
    assert "mlflow.source.type" in run.data.tags  # the client's system tags are kept
    history = client.get_metric_history(run_id, "loss")
    assert [(m.step, m.value) for m in history] == [(0, 0.9), (1, 0.5), (2, 0.25)]

    found = mlflow.search_runs(
        experiment_ids=[experiment_id], filter_string="metrics.loss < 0.3 AND params.optimizer = 'adam'",
        output_format="list",
    )  # fmt: skip
    assert [r.info.run_id for r in found] == [run_id]
    assert (
        mlflow.search_runs(
            experiment_ids=[experiment_id], filter_string="tags.team = 'audio'", output_format="list"
        )
        == []
    )

    stored = Run.objects.get(id=int(run_id))
    assert stored.origin == Run.Origin.CLIENT and stored.status == Run.Status.SUCCEEDED
    assert stored.project.name == "mnist-sweep" and stored.project.owner == people["owner"]
    assert stored.config["params"]["lr"] == "0.01"
    assert list(stored.tags.values_list("name", flat=True)) == ["team=vision"]


def test_a_stranger_gets_not_found_and_a_viewer_cannot_write(tracking, people):
    owner = tracking("owner")
    lab = owner.get_experiment_by_name("lab")
    run = owner.create_run(lab.experiment_id, run_name="shared")
    owner.log_metric(run.info.run_id, "loss", 1.0, step=0)

    stranger = tracking("stranger")
    for call in (
        lambda: stranger.get_run(run.info.run_id),
        lambda: stranger.log_metric(run.info.run_id, "loss", 2.0, step=1),
        lambda: stranger.get_experiment(lab.experiment_id),
        lambda: stranger.get_run("999999"),
    ):
        with pytest.raises(MlflowException) as caught:
            call()
        assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert stranger.get_experiment_by_name("lab") is None

    viewer = tracking("viewer")
    assert viewer.get_run(run.info.run_id).data.metrics == {"loss": 1.0}
    with pytest.raises(MlflowException) as caught:
        viewer.log_metric(run.info.run_id, "loss", 2.0, step=1)
    assert caught.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(MlflowException) as caught:
        viewer.create_run(lab.experiment_id)
    assert caught.value.error_code == "PERMISSION_DENIED"

    editor = tracking("editor")
    editor.log_batch(run.info.run_id, metrics=[mlflow.entities.Metric("loss", 0.5, 0, 1)])
    editor.set_terminated(run.info.run_id, "KILLED")
    assert owner.get_run(run.info.run_id).info.status == "KILLED"


def test_errors_are_mlflow_errors(tracking, people):
    client = tracking("owner")
    experiment_id = client.create_experiment("dup")
    with pytest.raises(MlflowException) as caught:
        client.create_experiment("dup")
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS"
    run = client.create_run(experiment_id)
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as caught:
        client.log_param(run.info.run_id, "lr", "0.2")  # params are logged once, as in MLflow
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as caught:
        client.search_runs([experiment_id], filter_string="metrics.loss ~ 3")
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    client.delete_run(run.info.run_id)
    assert not Run.objects.filter(id=int(run.info.run_id)).exists()


def test_search_orders_and_pages(tracking, people):
    client = tracking("owner")
    experiment_id = client.create_experiment("pages")
    ids = []
    for n in range(5):
        run = client.create_run(experiment_id, run_name=f"r{n}")
        client.log_metric(run.info.run_id, "acc", n / 10, step=0)
        ids.append(run.info.run_id)
    page = client.search_runs([experiment_id], order_by=["metrics.acc DESC"], max_results=2)
    assert [r.info.run_id for r in page] == [ids[4], ids[3]] and page.token
    rest = client.search_runs(
        [experiment_id], order_by=["metrics.acc DESC"], max_results=10, page_token=page.token
    )
    assert [r.info.run_id for r in rest] == [ids[2], ids[1], ids[0]] and not rest.token
    found = client.search_runs(
        [experiment_id], filter_string="attributes.run_name LIKE 'r%' AND metrics.acc >= 0.3"
    )
    assert sorted(r.info.run_id for r in found) == sorted(ids[3:])
    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'pa%'")]
    assert names == ["pages"]


def test_default_experiment_is_made_on_first_use(tracking, people):
    tracking("owner")
    with mlflow.start_run() as active:
        mlflow.log_metric("x", 1.0, step=3)
    run = Run.objects.get(id=int(active.info.run_id))
    assert run.project.name == "Default" and run.project.owner == people["owner"]


@pytest.mark.slow
def test_lightning_mlflow_logger_logs_into_the_lab_and_the_run_page_shows_it(tracking, people, client):
    torch = pytest.importorskip("torch")
    pl = pytest.importorskip("pytorch_lightning")
    from pytorch_lightning.loggers import MLFlowLogger

    class Tiny(pl.LightningModule):
        def __init__(self, lr: float = 0.05, hidden: int = 4):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(
                torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 2)
            )

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = torch.nn.functional.cross_entropy(self.net(x), y)
            self.log("train_loss", loss)
            self.log("train/acc", (self.net(x).argmax(1) == y).float().mean())
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    tracking("owner")
    generator = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(32, 3, generator=generator), torch.randint(0, 2, (32,)))
    logger = MLFlowLogger(
        experiment_name="lightning", tracking_uri=mlflow.get_tracking_uri(), tags={"team": "vision"}
    )
    trainer = pl.Trainer(
        max_epochs=1, accelerator="cpu", logger=logger, log_every_n_steps=1, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
    )  # fmt: skip
    trainer.fit(Tiny(), torch.utils.data.DataLoader(data, batch_size=8))

    run = Run.objects.get(id=int(logger.run_id))
    assert run.project.name == "lightning" and run.status == Run.Status.SUCCEEDED
    assert run.config["params"] == {"lr": "0.05", "hidden": "4"}
    names = set(run.metric_points.values_list("name", flat=True))
    assert {"train_loss", "train/acc"} <= names
    assert run.metric_points.filter(name="train_loss").count() == 4  # one point per training step

    client.force_login(people["owner"])
    page = client.get(f"/runs/{run.id}/").content.decode()
    for shown in ("train_loss", "train/acc", "lr: &#x27;0.05&#x27;", "team=vision"):
        assert shown in page or shown.replace("&#x27;", "'") in page, shown


@pytest.mark.filterwarnings("ignore:MLflowCallback has been deprecated:FutureWarning")
def test_optunas_mlflow_callback_logs_each_trial_as_a_run(tracking, people):
    """Optuna's own ``MLflowCallback`` (optuna-integration) against the lab: one run per trial, in the
    study's project, with the trial's params and its value."""
    optuna = pytest.importorskip("optuna")
    from optuna_integration.mlflow import MLflowCallback

    client = tracking("owner")
    callback = MLflowCallback(tracking_uri=mlflow.get_tracking_uri(), metric_name="val_loss")
    study = optuna.create_study(study_name="lr-search", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(
        lambda trial: (trial.suggest_float("lr", 1e-4, 1e-1, log=True) - 0.01) ** 2,
        n_trials=3,
        callbacks=[callback],
    )

    experiment = client.get_experiment_by_name("lr-search")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert sorted(runs) == ["0", "1", "2"]  # the callback names a run by its trial's number
    for trial in study.trials:
        run = runs[str(trial.number)]
        assert float(run.data.params["lr"]) == pytest.approx(trial.params["lr"])
        assert run.data.metrics["val_loss"] == pytest.approx(trial.value)
        assert run.info.status == "FINISHED"
    stored = Run.objects.filter(project__name="lr-search", project__owner=people["owner"])
    assert stored.count() == 3 and {r.origin for r in stored} == {Run.Origin.CLIENT}
