"""train.curriculum: pacing fractions, the order of examples, scores from a run / an array, bad scores, exact resume."""

import numpy as np
import pytest
import torch

from layerlab.core.errors import ConfigError, DataError
from layerlab.train.callbacks import Callback
from layerlab.train.config import experiment_from_mapping
from layerlab.train.curriculum import (
    Curriculum,
    CurriculumConfig,
    check_scores,
    fraction_at,
    ranking,
    subset_size,
)
from layerlab.train.loop import epoch_order
from layerlab.train.runner import Trainer, train_experiment

BASE = {
    "seed": 2,
    "data": {"source": "digits", "limit": 300},
    "model": {"preset": "mlp", "options": {"hidden": [16]}},
    "train": {"epochs": 4, "batch_size": 32, "lr": 0.01},
}


def config(curriculum=None, **train):
    mapping = {**BASE, "train": {**BASE["train"], **train}}
    if curriculum is not None:
        mapping["train"]["curriculum"] = curriculum
    return experiment_from_mapping(mapping)


def pacing(**options):
    return CurriculumConfig(**{"order": "random", **options})


def test_linear_step_and_exponential_pacing_reach_all_data_at_until_epoch():
    linear = [fraction_at(pacing(pacing="linear", start=0.2, until_epoch=5), e, 8) for e in range(1, 9)]
    assert linear == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0, 1.0, 1.0, 1.0])
    step = [fraction_at(pacing(pacing="step", start=0.2, until_epoch=5, steps=2), e, 8) for e in range(1, 7)]
    assert step == pytest.approx([0.2, 0.2, 0.6, 0.6, 1.0, 1.0])
    exponential = [
        fraction_at(pacing(pacing="exponential", start=0.125, until_epoch=4), e, 8) for e in (1, 2, 3, 4)
    ]
    assert exponential == pytest.approx([0.125, 0.25, 0.5, 1.0])
    assert fraction_at(pacing(start=0.3), 1, 1) == 1.0  # until_epoch defaults to train.epochs
    assert subset_size(0.2, 7) == 2 and subset_size(1e-9, 7) == 1 and subset_size(1.0, 7) == 7


def test_order_easy_first_hard_first_and_ties_keep_the_example_order():
    scores = np.array([0.5, 0.1, 0.9, 0.1, 0.3])
    assert ranking(scores, "easy_first").tolist() == [1, 3, 4, 0, 2]
    assert ranking(scores, "hard_first").tolist() == [2, 0, 4, 1, 3]
    cur = Curriculum(CurriculumConfig(order="easy_first", score={"array": "s.npy"}, start=0.4), scores, 3)
    assert sorted(cur.subset(1).tolist()) == [1, 3]  # the two easiest
    assert sorted(cur.subset(3).tolist()) == [0, 1, 2, 3, 4]


def test_the_epoch_order_shuffles_only_the_subset_with_the_seeded_generator():
    subset = torch.tensor([4, 7, 1])
    a = epoch_order(10, torch.Generator().manual_seed(5), subset)
    b = epoch_order(10, torch.Generator().manual_seed(5), subset)
    assert sorted(a.tolist()) == [1, 4, 7] and a.tolist() == b.tolist()
    assert (
        epoch_order(10, torch.Generator().manual_seed(5)).tolist()
        == torch.randperm(10, generator=torch.Generator().manual_seed(5)).tolist()
    )  # no curriculum: the order of before


class Seen(Callback):
    """Records how many examples each epoch trained on (the curriculum's subset size)."""

    def __init__(self):
        self.sizes = []

    def on_epoch_end(self, trainer, epoch, metrics):
        self.sizes.append(len(trainer.curriculum.subset(epoch)))


def test_a_run_trains_on_the_easiest_fraction_of_an_array_score(tmp_path):
    cfg = config()
    probe = Trainer(cfg, tmp_path / "probe")
    probe.prepare_data()
    n = len(probe.splits["train"][1])
    scores = np.arange(n, dtype=float)[::-1].copy()  # the last training example is the easiest
    np.save(tmp_path / "scores.npy", scores)
    seen = Seen()
    cur = {
        "score": {"array": str(tmp_path / "scores.npy")},
        "pacing": "linear",
        "start": 0.25,
        "until_epoch": 3,
    }
    summary = train_experiment(config(cur), tmp_path / "run", callbacks=[seen])
    assert summary["curriculum"]["fractions"] == pytest.approx([0.25, 0.625, 1.0, 1.0])
    assert seen.sizes == [subset_size(0.25, n), subset_size(0.625, n), n, n]
    trainer = Trainer(config(cur), tmp_path / "again")
    trainer.prepare_data()
    trainer.build()
    trainer.restore()
    assert set(trainer.curriculum.subset(1).tolist()) == set(range(n - subset_size(0.25, n), n))


def test_scores_from_an_earlier_run_are_its_loss_or_one_minus_its_confidence(tmp_path):
    train_experiment(config(epochs=2), tmp_path / "teacher")
    for by in ("loss", "confidence"):
        cur = {"score": {"run": str(tmp_path / "teacher"), "by": by}, "start": 0.5}
        trainer = Trainer(config(cur), tmp_path / f"student-{by}")
        trainer.prepare_data()
        trainer.build()
        trainer.restore()
        from layerlab.train import adapters
        from layerlab.train.checkpoint import checkpoint_load

        state = checkpoint_load(tmp_path / "teacher" / "checkpoints" / "best.ckpt")
        teacher = adapters.network_from_dict(state["network"])
        teacher.load_state_dict(state["model"])
        teacher.eval()
        x, y = trainer.splits["train"]
        with torch.no_grad():
            logits = teacher(x)
        if by == "loss":
            expected = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        else:
            expected = 1 - torch.softmax(logits, 1)[torch.arange(len(y)), y]
        assert trainer.curriculum.scores == pytest.approx(expected.double().numpy(), abs=1e-5)


def test_a_score_of_the_wrong_length_names_both_lengths(tmp_path):
    np.save(tmp_path / "short.npy", np.zeros(7))
    cur = {"score": {"array": str(tmp_path / "short.npy")}}
    with pytest.raises(DataError, match=r"has 7 scores but the training split has \d+ examples \(or 1797"):
        train_experiment(config(cur), tmp_path / "run")
    assert not (tmp_path / "run" / "config.yaml").exists()  # nothing half-written: a rerun starts clean
    np.save(tmp_path / "short.npy", np.zeros(1797))
    train_experiment(config(cur, epochs=1), tmp_path / "run")


def test_nan_scores_and_bad_sources_are_refused(tmp_path):
    with pytest.raises(DataError, match="1 NaN or infinite score"):
        check_scores([0.1, float("nan"), 0.3], 3, None, "scores")
    with pytest.raises(ConfigError, match="exactly one source of scores, got run, array"):
        config({"score": {"run": "a", "array": "b.npy"}})
    with pytest.raises(ConfigError, match="needs a difficulty score"):
        config({"order": "easy_first"})
    with pytest.raises(ConfigError, match="draws its own scores"):
        config({"order": "random", "score": {"array": "s.npy"}})
    with pytest.raises(ConfigError, match=r"start must be in \(0, 1\]"):
        config({"order": "random", "start": 0})
    with pytest.raises(ConfigError, match="a score column needs a csv data source, not digits"):
        train_experiment(config({"score": {"column": "difficulty"}}), tmp_path / "run")


def csv_config(path, ignore):
    data = {"source": "csv", "path": str(path), "label_column": "label", "split": {"val": 0.0, "test": 0.0}}
    if ignore:
        data["ignore_columns"] = ["difficulty"]
    return experiment_from_mapping(
        {
            "data": data,
            "model": {"preset": "mlp", "options": {"hidden": [4]}},
            "train": {"epochs": 2, "curriculum": {"score": {"column": "difficulty"}, "start": 0.5}},
        }
    )


def test_a_csv_column_gives_the_scores_and_is_left_out_of_the_features(tmp_path):
    rows = ["a,b,difficulty,label"] + [f"{i},{-i},{(i * 7) % 10},{i % 2}" for i in range(10)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match="column 'difficulty' would also be a feature.*ignore_columns"):
        train_experiment(csv_config(tmp_path / "d.csv", ignore=False), tmp_path / "refused")
    trainer = Trainer(csv_config(tmp_path / "d.csv", ignore=True), tmp_path / "run")
    trainer.prepare_data()
    trainer.build()
    trainer.restore()
    assert trainer.input_shape == [2]  # a and b; difficulty and label are not features
    x = trainer.splits["train"][0]
    by_a = dict(zip(np.round(x[:, 0].numpy(), 4).tolist(), trainer.curriculum.scores.tolist(), strict=True))
    assert sorted(by_a.values()) == sorted(float((i * 7) % 10) for i in range(10))


def test_random_order_growing_subsets_are_seeded(tmp_path):
    a = Trainer(config({"order": "random", "start": 0.3}), tmp_path / "a")
    b = Trainer(config({"order": "random", "start": 0.3}), tmp_path / "b")
    for t in (a, b):
        t.prepare_data()
        t.build()
        t.restore()
    assert a.curriculum.subset(1).tolist() == b.curriculum.subset(1).tolist()


class Crash(Callback):
    def on_epoch_end(self, trainer, epoch, metrics):
        if epoch == 3:
            raise RuntimeError("crash")


def test_resume_with_a_curriculum_is_bitwise_exact_and_keeps_the_checkpoint_scores(tmp_path):
    scores = np.random.default_rng(0).random(1797)  # one per example of the source (digits: 1797; limit 300)
    np.save(tmp_path / "scores.npy", scores)
    cur = {"score": {"array": str(tmp_path / "scores.npy")}, "pacing": "exponential", "start": 0.2}
    whole = train_experiment(config(cur, epochs=5, checkpoint_every=2), tmp_path / "whole")
    with pytest.raises(RuntimeError):
        train_experiment(config(cur, epochs=5, checkpoint_every=2), tmp_path / "cut", callbacks=[Crash()])
    (tmp_path / "scores.npy").unlink()  # the resumed run reads its scores from the checkpoint
    resumed = train_experiment(None, tmp_path / "cut", resume=True)
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    plain = train_experiment(config(epochs=5), tmp_path / "plain")
    assert plain["weights_sha256"] != whole["weights_sha256"]  # the curriculum changed the training
