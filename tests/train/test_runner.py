"""train_experiment with stand-in data and networks: run directory, resume, divergence, stopping."""

import json

import pytest
import torch
import yaml

from layerlab.core.errors import CheckpointError, ConfigError, DivergedError
from layerlab.train import runner
from layerlab.train.callbacks import Callback
from layerlab.train.checkpoint import checkpoint_load
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


def config(**train):
    base = {"epochs": 4, "batch_size": 16, "lr": 0.01}
    return experiment_from_mapping(
        {"seed": 3, "model": {"options": {"hidden": [16], "dropout": 0.1}}, "train": {**base, **train}}
    )


class Crash(Callback):
    """Raises at the end of one epoch: a crash after that epoch's metrics line, before its checkpoint."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == self.epoch:
            raise RuntimeError("crash")


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_run_start(self, trainer, info):
        self.events.append(("start", info["start_epoch"]))

    def on_epoch_end(self, trainer, epoch, metrics):
        self.events.append(("epoch", epoch))

    def on_checkpoint(self, trainer, path, epoch, kind):
        self.events.append((path.name, epoch))

    def on_run_end(self, trainer, summary):
        self.events.append(("end", summary["status"]))


def test_run_directory_holds_everything(standins, tmp_path):
    rec = Recorder()
    summary = train_experiment(config(checkpoint_every=2), tmp_path, callbacks=[rec])
    files = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()}
    assert files == {
        "config.yaml",
        "network.json",
        "preprocessing.json",
        "metrics.jsonl",
        "summary.json",
        "test_predictions.npz",  # per test example: true and predicted class (the dashboard's gallery)
        "checkpoints/epoch-0002.ckpt",
        "checkpoints/epoch-0004.ckpt",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    }
    resolved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert resolved["train"]["schedule"]["kind"] == "none" and resolved["data"]["split"]["val"] == 0.15
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert set(rows[0]) == {
        "epoch",
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "seconds",
    }
    assert json.loads((tmp_path / "summary.json").read_text())["weights_sha256"] == summary["weights_sha256"]
    for key in ("test_accuracy", "test_loss", "confusion_matrix", "per_class_accuracy", "verdict"):
        assert summary[key] is not None
    numbered_and_last = [e for e in rec.events if e[0] != "best.ckpt"]
    assert numbered_and_last == [("start", 1), ("epoch", 1), ("epoch", 2), ("epoch-0002.ckpt", 2)] + [
        ("last.ckpt", 2),
        ("epoch", 3),
        ("epoch", 4),
        ("epoch-0004.ckpt", 4),
        ("last.ckpt", 4),
        ("end", "completed"),
    ]
    assert ("best.ckpt", summary["best_epoch"]) in rec.events  # the callbacks hear of best and last too
    best = checkpoint_load(tmp_path / "checkpoints" / "best.ckpt")
    assert best["epoch"] == summary["best_epoch"] and summary["evaluated_weights"].startswith("best")


def test_same_seed_same_weights(standins, tmp_path):
    a = train_experiment(config(epochs=2), tmp_path / "a")
    b = train_experiment(config(epochs=2), tmp_path / "b")
    assert a["weights_sha256"] == b["weights_sha256"]


def test_resume_after_a_crash_is_exact_and_drops_extra_metric_lines(standins, tmp_path):
    whole = train_experiment(config(epochs=6, checkpoint_every=3), tmp_path / "whole")
    with pytest.raises(RuntimeError):
        train_experiment(config(epochs=6, checkpoint_every=3), tmp_path / "cut", callbacks=[Crash(5)])
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 5
    resumed = train_experiment(None, tmp_path / "cut", resume=True)
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    rows = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5, 6]


def test_corrupt_newest_checkpoint_is_named_and_an_earlier_one_used(standins, tmp_path, caplog):
    whole = train_experiment(config(epochs=4), tmp_path / "whole")
    with pytest.raises(RuntimeError):
        train_experiment(config(epochs=4), tmp_path / "cut", callbacks=[Crash(4)])
    (tmp_path / "cut" / "checkpoints" / "last.ckpt").write_bytes(b"torn")
    resumed = train_experiment(None, tmp_path / "cut", resume=True)
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    assert any("last.ckpt' is corrupt" in w for w in resumed["warnings"])
    assert "last.ckpt' is corrupt" in caplog.text


def test_resume_without_checkpoint_is_a_checkpoint_error(standins, tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint"):
        train_experiment(None, tmp_path, resume=True)


def test_new_run_refuses_a_used_directory(standins, tmp_path):
    train_experiment(config(epochs=1), tmp_path)
    with pytest.raises(ConfigError, match="already holds a run.*--resume"):
        train_experiment(config(epochs=1), tmp_path)


def test_nan_loss_stops_with_epoch_batch_and_hint_keeping_the_last_good_checkpoint(
    standins, tmp_path, monkeypatch
):
    real = runner.make_loss
    calls = {"n": 0}

    def poisoned(cfg, num_classes):
        fn = real(cfg, num_classes)

        def loss(out, y):
            calls["n"] += 1
            value = fn(out, y)
            return (
                value * float("nan") if calls["n"] == 2 * 7 + 3 else value
            )  # 6 train + 1 val batch an epoch

        return loss

    monkeypatch.setattr(runner, "make_loss", poisoned)
    with pytest.raises(DivergedError, match=r"diverged at epoch 3 \(batch 3\): loss is nan; lower train.lr"):
        train_experiment(config(epochs=5), tmp_path)
    assert checkpoint_load(tmp_path / "checkpoints" / "last.ckpt")["epoch"] == 2
    assert json.loads((tmp_path / "summary.json").read_text())["status"] == "diverged"


def test_early_stopping_counter_survives_resume(standins, tmp_path):
    stop = {"metric": "val_accuracy", "patience": 2, "min_delta": 0.5}  # nothing improves by 50 points
    whole = train_experiment(config(epochs=10, early_stopping=stop), tmp_path / "whole")
    assert whole["status"] == "early_stopped" and whole["epochs"] == 3
    with pytest.raises(RuntimeError):
        train_experiment(config(epochs=10, early_stopping=stop), tmp_path / "cut", callbacks=[Crash(3)])
    resumed = train_experiment(None, tmp_path / "cut", resume=True)
    assert resumed["status"] == "early_stopped" and resumed["epochs"] == 3
    assert resumed["weights_sha256"] == whole["weights_sha256"]


def test_a_callback_can_cancel_mid_epoch(standins, tmp_path):
    class Cancel(Callback):
        def __init__(self):
            self.polls = 0

        def should_stop(self, trainer):
            self.polls += 1
            return self.polls > 8

    summary = train_experiment(config(epochs=5), tmp_path, callbacks=[Cancel()])
    assert summary["status"] == "cancelled" and summary["epochs"] == 1


def test_a_callback_raising_before_a_write_stops_the_run_before_anything_is_written(standins, tmp_path):
    class Lost(Exception):
        pass

    class Fence(Callback):
        """Like a worker whose run was taken over during epoch 3: every later write is refused."""

        def __init__(self):
            self.writes = []

        def on_before_write(self, trainer, what):
            if len(self.writes) >= 1 + 2 * 2:  # start files, then metrics + checkpoint of epochs 1, 2
                raise Lost(what)
            self.writes.append(what)

    fence = Fence()
    with pytest.raises(Lost, match="metrics"):
        train_experiment(config(epochs=5), tmp_path, callbacks=[fence])
    assert fence.writes == ["start", "metrics", "checkpoint", "metrics", "checkpoint"]
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
    ]
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("epoch-*.ckpt")) == [
        "epoch-0001.ckpt",
        "epoch-0002.ckpt",
    ]
    assert not (tmp_path / "summary.json").exists()


@pytest.mark.parametrize(
    "train",
    [
        {"optimizer": "sgd", "nesterov": True, "loss": "hinge", "grad_clip": 1.0},
        {"optimizer": "rmsprop", "loss": "squared_hinge", "l1": 1e-4},
        {"optimizer": "adamw", "loss": "mse", "l2": 1e-3, "schedule": {"kind": "cosine"}},
        {"optimizer": "adam", "label_smoothing": 0.1, "schedule": {"kind": "plateau"}},
    ],
)
def test_every_optimizer_and_loss_trains(standins, tmp_path, train):
    summary = train_experiment(config(epochs=2, **train), tmp_path)
    assert summary["status"] == "completed" and 0.0 <= summary["test_accuracy"] <= 1.0


def test_spiral_stand_in_is_learned(standins, tmp_path):
    cfg = experiment_from_mapping(
        {"model": {"options": {"hidden": [64]}}, "train": {"epochs": 60, "batch_size": 32, "lr": 0.02}}
    )
    summary = train_experiment(cfg, tmp_path)
    assert summary["train_accuracy"] > 0.9


def test_early_stopping_on_validation_needs_a_validation_split(standins, tmp_path):
    cfg = experiment_from_mapping(
        {"data": {"split": {"val": 0.0}}, "train": {"early_stopping": {"patience": 2}}}
    )
    with pytest.raises(ConfigError, match="needs a validation split"):
        train_experiment(cfg, tmp_path)


def test_cuda_without_cuda_is_a_clear_error(standins, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_experiment(config(epochs=1), tmp_path, device="cuda")


def poison_weights_after_epoch(monkeypatch, epoch_to_poison):
    """Every batch loss of the epoch stays finite, but its last step leaves NaN weights behind."""
    real = runner.train_epoch
    epochs = {"n": 0}

    def train_epoch(model, *args, **kwargs):
        result = real(model, *args, **kwargs)
        epochs["n"] += 1
        if epochs["n"] == epoch_to_poison:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return result

    monkeypatch.setattr(runner, "train_epoch", train_epoch)


def test_nan_validation_loss_with_a_finite_train_loss_diverges_at_that_epoch(standins, tmp_path, monkeypatch):
    poison_weights_after_epoch(monkeypatch, 3)
    with pytest.raises(
        DivergedError, match=r"diverged at epoch 3: validation loss is nan \(train loss"
    ) as exc:
        train_experiment(config(epochs=5, checkpoint_every=1), tmp_path)
    assert "the last good checkpoint is kept" in str(exc.value)
    last = checkpoint_load(tmp_path / "checkpoints" / "last.ckpt")
    assert last["epoch"] == 2 and all(torch.isfinite(t).all() for t in last["model"].values())
    best = checkpoint_load(tmp_path / "checkpoints" / "best.ckpt")
    assert best["epoch"] <= 2
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]


def test_nan_weights_without_a_validation_split_diverge(standins, tmp_path, monkeypatch):
    poison_weights_after_epoch(monkeypatch, 1)
    cfg = config(epochs=3)
    cfg = experiment_from_mapping({**cfg.to_dict(), "data": {**cfg.to_dict()["data"], "split": {"val": 0.0}}})
    with pytest.raises(
        DivergedError, match=r"diverged at epoch 1: the weights hold NaN.*no checkpoint had been"
    ):
        train_experiment(cfg, tmp_path)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop", "adamw"])
def test_a_huge_finite_loss_diverges_at_its_batch_for_any_optimizer(
    standins, tmp_path, monkeypatch, optimizer
):
    real = runner.make_loss
    calls = {"n": 0}

    def huge(cfg, num_classes):
        fn = real(cfg, num_classes)

        def loss(out, y):
            calls["n"] += 1
            value = fn(out, y)
            return value * 1e36 if calls["n"] >= 7 + 2 else value  # from epoch 2, batch 2 (6 train + 1 val)

        return loss

    monkeypatch.setattr(runner, "make_loss", huge)
    with pytest.raises(
        DivergedError, match=r"diverged at epoch 2 \(batch 2\): loss is .*e\+3\d \(above 1e\+15\)"
    ):
        train_experiment(config(epochs=4, optimizer=optimizer), tmp_path)
    assert calls["n"] == 9  # stopped at that batch: no further batch, no validation
    summary = json.loads((tmp_path / "summary.json").read_text(), parse_constant=pytest.fail)
    assert summary["status"] == "diverged" and summary["epochs"] == 1
    assert checkpoint_load(tmp_path / "checkpoints" / "last.ckpt")["epoch"] == 1


def test_summaries_never_hold_non_finite_numbers(tmp_path):
    from layerlab.train.rundir import finite_only, write_summary

    write_summary(tmp_path, {"a": float("inf"), "b": [1.0, float("nan")], "c": {"d": -float("inf")}})
    assert json.loads((tmp_path / "summary.json").read_text()) == {
        "a": None,
        "b": [1.0, None],
        "c": {"d": None},
    }
    assert finite_only((1, 2.5)) == [1, 2.5]
