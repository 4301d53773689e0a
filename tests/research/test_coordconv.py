"""The CoordConv study (experiment kind ``coordconv``): its trial grid, option checks, report and a tiny run."""

from __future__ import annotations

import numpy as np
import pytest

from layerlab.core.errors import ConfigError
from layerlab.research.base import TrialResult
from layerlab.research.driver import plan
from layerlab.research.kinds.coordconv import CoordConvOptions, trial_config
from layerlab.research.kinds.coordconv_eval import pixel_metrics
from layerlab.research.kinds.coordconv_report import build_report
from layerlab.research.local import run_local
from layerlab.research.spec import parse_experiment


def experiment(data=None, base_train=None, **options) -> dict:
    """A coordconv experiment config; ``options`` go under experiment:, ``base_train`` is the base's train."""
    config = {"name": "cc", "seed": 0, "experiment": {"kind": "coordconv", **options}}
    if data is not None:
        config["data"] = data
    if base_train is not None:
        config["train"] = base_train
    return config


def test_the_plan_is_every_task_split_and_model_over_the_seeds():
    trials = plan(parse_experiment(experiment(seeds=[0, 1])), {})
    training = [t for t in trials.values() if t.probe is None]
    probes = [t for t in trials.values() if t.probe is not None]
    # classification: 2 splits x 3 models; regression: 2 splits x 2 models; each over 2 seeds
    assert len(training) == (2 * 3 + 2 * 2) * 2
    assert len(probes) == 2 * 2 * 2  # a pixel-accuracy probe after every regression run
    assert all(p.needs == (p.key.removesuffix("/pixels"),) and p.probe == "coordconv_pixels" for p in probes)
    cell = {(t.labels["task"], t.labels["split"], t.labels["model"]) for t in training}
    assert ("classification", "quadrant", "deconv") in cell and ("regression", "uniform", "conv") in cell
    assert ("regression", "uniform", "deconv") not in cell  # the deconv baseline is a classifier
    key = "classification/quadrant/deconv/seed=1"
    assert trials[key].labels == {"task": "classification", "split": "quadrant", "model": "deconv", "seed": 1}
    assert trials[key].config["seed"] == 1


def test_a_trial_config_layers_base_defaults_and_options():
    options = CoordConvOptions(
        train={"classification/deconv": {"epochs": 7}},
        model_options={"regression/conv": {"hidden": 32}},
    )
    base = {"name": "cc", "data": {"split": {"val": 0.2}}, "train": {"num_threads": 1, "batch_size": 99}}
    deconv = trial_config(base, options, "classification", "quadrant", "deconv", 3)
    assert deconv["data"] == {
        "target": "index", "split": {"val": 0.2}, "source": "not-so-clevr", "task_split": "quadrant",
    }  # fmt: skip
    assert deconv["model"]["preset"] == "deconv-classifier"
    train = deconv["train"]
    assert train["epochs"] == 7 and train["num_threads"] == 1 and train["task"] == "classification"
    assert train["batch_size"] == 16  # the model's default budget wins over the base's batch size
    assert train["early_stopping"] == {"metric": "train_loss"}  # the trained network, not a validation pick
    regression = trial_config(base, options, "regression", "uniform", "conv", 0)
    assert regression["data"]["target"] == "coordinates" and "normalize" not in regression["data"]
    assert regression["model"] == {"preset": "conv-regressor", "options": {"hidden": 32}}
    assert regression["train"]["task"] == "regression" and regression["train"]["loss"] == "mse"
    assert base == {
        "name": "cc",
        "data": {"split": {"val": 0.2}},
        "train": {"num_threads": 1, "batch_size": 99},
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (experiment(tasks=[]), "give at least one task"),
        (experiment(splits=["quadrnt"]), "did you mean 'quadrant'"),
        (experiment(classifiers=["deconv", "deconv"]), "a classifier is given twice"),
        (experiment(seeds=[1, 1]), "a seed is given twice"),
        (experiment(seeds=[-1]), "seeds"),
        (experiment(train={"classification/decon": {"epochs": 3}}), "did you mean 'classification/deconv'"),
        (experiment(train={"regression/conv": {"task": "classification"}}), "set by the task"),
        (experiment(train={"classification/conv": {"epochs": 0}}), "epochs must be in"),
        (experiment(model_options={"classification/deconv": {"chanels": [8]}}), "did you mean 'channels'"),
        (experiment(model_options={"classification/deconv": {"channels": [8]}}), "5 hidden channel sizes"),
        (experiment(data={"source": "spiral"}), "runs on not-so-clevr, not spiral"),
        (
            experiment(data={"source": "not-so-clevr", "target": "coordinates"}),
            "data.target is set by the study",
        ),
        (experiment(base_train={"loss": "mse"}), "train.loss is set by each trial's task"),
        ({"model": {"preset": "mlp"}, **experiment()}, "picks each trial's model"),
    ],
)
def test_bad_options_are_one_clear_error(config, message):
    with pytest.raises(ConfigError, match=message):
        plan(parse_experiment(config), {})


def test_pixel_accuracy_counts_the_right_pixel_on_both_axes():
    target = np.array([[10, 20], [10, 20], [30, 40]]) / 64
    pred = target + np.array([[0.4, -0.4], [0.6, 0.0], [0.0, 0.0]]) / 64  # off by under, over half a pixel
    metrics = pixel_metrics(pred, target, "test")
    assert metrics["test_accuracy"] == pytest.approx(2 / 3)
    assert metrics["test_pixel_error"] == pytest.approx((np.hypot(0.4, 0.4) + 0.6) / 3)
    assert metrics["test_mse"] == pytest.approx(np.mean((pred - target) ** 2))


def _done(key: str, **summary) -> TrialResult:
    return TrialResult(key, "completed", summary, None, 2.0)


def test_the_report_states_the_papers_pattern_from_the_numbers():
    options = CoordConvOptions(seeds=[0, 1], tasks=["classification", "regression"])
    scores = {  # (train, test) accuracy per task/split/model
        ("classification", "uniform", "coordconv"): (1.0, 1.0),
        ("classification", "quadrant", "coordconv"): (1.0, 0.998),
        ("classification", "uniform", "deconv"): (0.97, 0.6),
        ("classification", "quadrant", "deconv"): (0.98, 0.0),
        ("classification", "uniform", "conv"): (0.5, 0.4),
        ("classification", "quadrant", "conv"): (0.5, 0.0),
        ("regression", "uniform", "coordconv"): (1.0, 1.0),
        ("regression", "quadrant", "coordconv"): (1.0, 0.99),
        ("regression", "uniform", "conv"): (0.3, 0.2),
        ("regression", "quadrant", "conv"): (0.2, 0.0),
    }
    results = {}
    for (task, split, model), (train, test) in scores.items():
        for seed in options.seeds:
            key = f"{task}/{split}/{model}/seed={seed}"
            results[key] = _done(key, train_accuracy=train, test_accuracy=test, parameters=100 + seed)
            if task == "regression":
                results[f"{key}/pixels"] = _done(
                    f"{key}/pixels", train_accuracy=train, test_accuracy=test, test_mse=0.01
                )
    report = build_report({"name": "cc"}, options, results)
    rows = {(r["task"], r["split"], r["model"]): r for r in report.rows}
    assert len(rows) == 10 and all(r["seeds"] == 2 for r in rows.values())
    assert rows[("classification", "uniform", "deconv")]["test_accuracy"] == 0.6
    assert rows[("regression", "quadrant", "conv")]["test_mse"] == 0.01
    assert rows[("classification", "quadrant", "coordconv")]["test_ci"] == "[0.998, 0.998]"
    # two seeds that disagree: the t interval is clipped to [0, 1] and the finding lists the seeds
    split_seeds = {**results}
    for seed, value in ((0, 1.0), (1, 0.0)):
        key = f"regression/uniform/coordconv/seed={seed}/pixels"
        split_seeds[key] = _done(key, train_accuracy=value, test_accuracy=value, test_mse=0.01)
    disagreeing = build_report({}, options, split_seeds)
    row = next(
        r
        for r in disagreeing.rows
        if (r["task"], r["split"], r["model"]) == ("regression", "uniform", "coordconv")
    )
    assert row["test_accuracy"] == 0.5 and row["test_ci"] == "[0.000, 1.000]"
    assert "CoordConv test 50.0% (seeds: 100.0%, 0.0%)" in " ".join(disagreeing.findings)
    text = " ".join(report.findings)
    assert "CoordConv classification, quadrant split: train 100.0%, test 99.8%" in text
    assert "as the paper (100% / 100%)" in text
    assert "the paper's pattern" in text and "about 0% on the held-out quadrant" in text
    assert "far below CoordConv, as the paper" in text
    assert "did not complete" not in text
    assert report.reference and any("reported qualitatively" in str(r) for r in report.reference["rows"])
    assert {p.name for p in report.plots} == {"test_accuracy", "train_accuracy"}


def test_the_report_says_so_when_the_pattern_is_not_there():
    options = CoordConvOptions(seeds=[0, 1], tasks=["classification"], classifiers=["coordconv", "deconv"])
    results = {}
    for split in ("uniform", "quadrant"):
        for model, (train, test) in (("coordconv", (0.7, 0.5)), ("deconv", (0.5, 0.5))):
            key = f"classification/{split}/{model}/seed=0"
            results[key] = _done(key, train_accuracy=train, test_accuracy=test)
    text = " ".join(build_report({}, options, results).findings)
    assert "short of the paper's 100% / 100%" in text
    assert "has NOT fitted the training set at this budget and shows no train-test gap" in text
    assert "above the expected ~0%" in text
    assert "4 trial(s) did not complete" in text  # seed 1 never ran


TINY_BUDGET = {"epochs": 3, "lr": 0.02, "batch_size": 32}


def test_a_tiny_run_shows_coordconv_extrapolating_where_plain_conv_cannot(tmp_path):
    config = experiment(
        data={"source": "not-so-clevr", "limit": 640, "split": {"val": 0.05}},
        base_train={"num_threads": 1, "checkpoint_every": 100},
        tasks=["classification"],
        splits=["quadrant"],
        classifiers=["coordconv", "conv"],
        seeds=[0],
        model_options={
            "classification/coordconv": {"channels": [8, 8]},
            "classification/conv": {"channels": [8, 8]},
        },
        train={"classification/coordconv": TINY_BUDGET, "classification/conv": TINY_BUDGET},
    )
    outcome = run_local(config, tmp_path / "exp", device="cpu")
    rows = {r["model"]: r for r in outcome.report.rows}
    assert rows["coordconv"]["test_accuracy"] >= 0.9  # the held-out quadrant, never seen in training
    assert rows["conv"]["test_accuracy"] <= 0.1
    assert rows["coordconv"]["parameters"] < rows["conv"]["parameters"]
    assert (tmp_path / "exp" / "report.md").is_file()
