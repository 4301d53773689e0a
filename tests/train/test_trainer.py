"""The public Trainer: its phases, what callbacks see, state keys, older checkpoints, who writes."""

import pytest
import torch

from layerlab.core import runlayout
from layerlab.train.callbacks import Callback, CallbackList, EarlyStopping
from layerlab.train.checkpoint import checkpoint_load, checkpoint_save
from layerlab.train.config import experiment_from_mapping
from layerlab.train.distributed import SingleProcess
from layerlab.train.runner import Trainer, train_experiment

STOP = {
    "metric": "val_accuracy",
    "patience": 2,
    "min_delta": 0.5,
}  # nothing improves by 50 points: stops at 3


def config(**train):
    base = {"epochs": 4, "batch_size": 16, "lr": 0.01}
    return experiment_from_mapping(
        {"seed": 3, "model": {"options": {"hidden": [16], "dropout": 0.1}}, "train": {**base, **train}}
    )


class Crash(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == self.epoch:
            raise RuntimeError("crash")


class Counter(Callback):
    """A stateful research callback: counts the epochs it has seen, across resumes."""

    def __init__(self):
        self.seen = 0

    def on_epoch_end(self, trainer, epoch, metrics):
        self.seen += 1

    def state_dict(self):
        return {"seen": self.seen}

    def load_state_dict(self, state):
        self.seen = state["seen"]


class Inspector(Callback):
    def __init__(self):
        self.seen, self.checkpoints = [], []

    def on_run_start(self, trainer, info):
        self.seen.append(("start", trainer.epoch, isinstance(trainer.model, torch.nn.Module)))

    def on_epoch_end(self, trainer, epoch, metrics):
        x, _ = trainer.splits["train"]
        with torch.no_grad():
            logits = trainer.model(x[:2])  # research code may run the model from inside a run
        self.seen.append(
            (
                "epoch",
                trainer.epoch,
                tuple(logits.shape),
                trainer.optimizer is not None,
                trainer.run_dir.is_dir(),
                trainer.strategy.is_writer,
            )
        )

    def on_checkpoint(self, trainer, path, epoch, kind):
        assert runlayout.checkpoint_kind(path.name) == kind and path.is_file()
        self.checkpoints.append((kind, epoch))

    def on_run_end(self, trainer, summary):
        self.seen.append(("end", trainer.summary is summary, trainer.status))


def test_every_hook_receives_the_trainer_and_checkpoints_say_their_kind(standins, tmp_path):
    spy = Inspector()
    train_experiment(config(epochs=3, checkpoint_every=2), tmp_path, callbacks=[spy])
    assert spy.seen[0] == ("start", 0, True)
    assert [s[:2] for s in spy.seen[1:4]] == [("epoch", 1), ("epoch", 2), ("epoch", 3)]
    assert all(s[2][0] == 2 and s[3] and s[4] and s[5] for s in spy.seen[1:4])
    assert spy.seen[-1] == ("end", True, "completed")
    kinds = {kind for kind, _ in spy.checkpoints}
    assert (
        {"numbered", "last"} <= kinds
        and ("numbered", 2) in spy.checkpoints
        and ("last", 3) in spy.checkpoints
    )
    assert all(kind in {"best", "numbered", "last"} for kind in kinds)


def test_the_phases_can_be_run_one_by_one(standins, tmp_path):
    trainer = Trainer(config(epochs=2), tmp_path, device="cpu")
    trainer.prepare_data()
    trainer.build()
    assert set(trainer.splits) == {"train", "val", "test"} and trainer.classes
    assert not (tmp_path / runlayout.CONFIG).exists()  # nothing written before restore()
    trainer.restore()
    assert (tmp_path / runlayout.NETWORK).is_file()
    status = trainer.fit()
    summary = trainer.finish(status)
    assert summary["status"] == "completed" and trainer.epoch == 2
    assert summary == train_experiment(config(epochs=2), tmp_path / "again") | {
        "run_dir": str(tmp_path),
        "seconds": summary["seconds"],
        "train_seconds": summary["train_seconds"],
    }


def test_callback_state_is_stored_under_its_state_key(standins, tmp_path):
    counter = Counter()
    train_experiment(config(epochs=2, early_stopping=STOP), tmp_path, callbacks=[counter])
    state = checkpoint_load(tmp_path / runlayout.CHECKPOINT_DIR / runlayout.LAST)
    assert set(state["callbacks"]) == {"EarlyStopping", "Counter"}
    assert state["callbacks"]["Counter"] == {"seen": 2}


def test_adding_a_callback_does_not_break_resuming_an_older_run(standins, tmp_path):
    whole = train_experiment(config(epochs=10, early_stopping=STOP), tmp_path / "whole")
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError):
        train_experiment(config(epochs=10, early_stopping=STOP), cut, callbacks=[Counter(), Crash(3)])
    # resumed with a new callback first in the list: every state still finds its callback
    counter = Counter()
    resumed = train_experiment(None, cut, resume=True, callbacks=[Inspector(), counter])
    assert resumed["status"] == "early_stopped" and resumed["epochs"] == 3
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    assert counter.seen == 3  # 2 before the crash (restored) + epoch 3


def test_a_checkpoint_with_the_old_positional_callback_keys_still_resumes(standins, tmp_path):
    whole = train_experiment(config(epochs=10, early_stopping=STOP), tmp_path / "whole")
    cut = tmp_path / "cut"
    with pytest.raises(RuntimeError):
        train_experiment(config(epochs=10, early_stopping=STOP), cut, callbacks=[Counter(), Crash(3)])
    # rewrite every checkpoint as the engine wrote them before state keys: "<position>:<class name>"
    for path in (cut / runlayout.CHECKPOINT_DIR).glob("*.ckpt"):
        state = checkpoint_load(path)
        states = state.pop("callbacks")
        state.pop("format")
        state["callbacks"] = {
            "0:EarlyStopping": states["EarlyStopping"],
            "1:Counter": states["Counter"],
            "2:Crash": {},
        }
        checkpoint_save(path, state)
    counter = Counter()
    resumed = train_experiment(None, cut, resume=True, callbacks=[counter])
    assert resumed["status"] == "early_stopped" and resumed["epochs"] == 3
    assert resumed["weights_sha256"] == whole["weights_sha256"]  # early stopping's counter was restored
    assert counter.seen == 3


def test_two_stateful_callbacks_with_one_state_key_are_refused():
    with pytest.raises(ValueError, match="share the state_key 'Counter'"):
        CallbackList([Counter(), Counter()])
    assert CallbackList([Crash(1), Crash(2)])  # stateless: nothing to mix up


def test_a_process_that_is_not_the_writer_writes_nothing(standins, tmp_path):
    run_dir = tmp_path / "run"
    spy, writes = Inspector(), []

    class Fence(Callback):
        def on_before_write(self, trainer, what):
            writes.append(what)

    class Everywhere(EarlyStopping):
        pass

    everywhere = Everywhere("val_accuracy", patience=50)

    class NotWriter(SingleProcess):
        """A process that trains but does not write (what rank 1 of a group is to the Trainer)."""

        @property
        def is_writer(self):
            return False

    strategy = NotWriter(torch.device("cpu"))
    summary = train_experiment(
        config(epochs=2), run_dir, callbacks=[spy, Fence(), everywhere], strategy=strategy
    )
    assert summary["status"] == "completed" and summary["weights_sha256"]  # a non-writer's short summary
    assert not run_dir.exists() or not any(run_dir.rglob("*"))
    assert spy.seen == [] and writes == []  # writer-only callbacks run on rank 0 alone
    assert everywhere.best is not None  # all_ranks callbacks run on every rank
