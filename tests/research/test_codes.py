"""CNN codes: extraction from a named layer, a missing layer, C chosen by cross-validation, the experiment end to end."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from layerlab.core.errors import ConfigError
from layerlab.research.codes import draw_per_class, extract_codes, fit_linear, renormalize, resolve_layer
from layerlab.research.kinds.codes import Codes
from layerlab.research.local import run_local
from layerlab.research.spec import parse_experiment


def lenet():
    from layerlab.nn.build import build_network
    from layerlab.nn.presets import preset_spec
    from layerlab.nn.spec import parse_network

    torch.manual_seed(0)
    spec = preset_spec("lenet5", input_shape=(1, 8, 8), num_classes=3, channels=[4, 6], hidden=[10, 7])
    return build_network(parse_network(spec))


def test_codes_are_the_input_of_the_last_linear_layer_or_a_named_layers_output():
    model = lenet()
    x = torch.randn(5, 1, 8, 8)
    assert resolve_layer(model, None) == ("out", "input")
    assert resolve_layer(model, None, earlier=True) == ("fc2", "input")
    codes = extract_codes(model, x, "out", "input", batch=2)
    with torch.no_grad():
        hidden = model.relu_4(model.fc2(model.relu_3(model.fc1(model.flatten_1(model.pool2(model.relu_2(
            model.conv2(model.pool1(model.relu_1(model.conv1(x))))
        )))))))  # fmt: skip
    assert codes.shape == (5, 7) and np.allclose(codes, hidden.numpy(), atol=1e-6)
    pooled = extract_codes(model, x, "pool1", "output")
    assert pooled.shape == (5, 4 * 4 * 4)  # a named layer's output, flattened
    assert not any(name.startswith("hook") for name in model._forward_hooks)  # hooks removed
    assert not model._forward_hooks and not model.pool1._forward_hooks and not model.out._forward_pre_hooks


def test_a_missing_layer_is_one_line_listing_the_layers():
    with pytest.raises(ConfigError) as caught:
        resolve_layer(lenet(), "fc9")
    line = caught.value.one_line()
    assert "experiment.layer: the network has no layer 'fc9'" in line
    assert "conv1, relu_1, pool1" in line and "\n" not in line


def test_cross_validation_on_the_training_split_picks_c():
    rng = np.random.default_rng(0)
    n = 120
    y = np.arange(n) % 2
    x = np.c_[y + rng.normal(0, 0.6, n), rng.normal(0, 1, (n, 30))]  # one useful feature, 30 of noise
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no convergence warning escapes
        fit = fit_linear(x, y, classifier="svm", Cs=[1e-4, 0.05, 100.0], folds=3, seed=0)
    assert fit["folds"] == 3 and fit["convergence_warnings"] == 0
    assert fit["C"] == 0.05  # 1e-4 underfits, 100 overfits the noise features
    assert fit["cv_accuracy"] > 0.7
    scaler = fit["model"].named_steps["scale"]
    assert np.allclose(scaler.mean_, x.mean(0))  # standardized inside the pipeline, on training data only
    logistic = fit_linear(x, y, classifier="logistic", Cs=[0.01, 1.0], folds=2, seed=0)
    assert logistic["C"] in (0.01, 1.0) and logistic["folds"] == 2


def test_one_example_per_class_fits_without_a_search_and_draws_are_per_class():
    y = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    index = draw_per_class(y, 2, np.random.default_rng(1))
    assert np.bincount(y[index]).tolist() == [2, 2, 2]
    x = np.eye(8)[:, :5]
    fit = fit_linear(x[[0, 3, 6]], y[[0, 3, 6]], classifier="svm", Cs=[0.1, 1.0], folds=3, seed=0)
    assert fit["folds"] == 0 and fit["C"] == 1.0 and fit["cv_accuracy"] is None


def test_renormalize_maps_our_statistics_onto_the_source_runs():
    class Ours:
        mean, std = [0.5], [0.25]

    raw = torch.tensor([[[[0.75]]]])  # a pixel of 0.75
    ours = (raw - 0.5) / 0.25
    theirs = {"mean": [0.25], "std": [0.5]}
    assert renormalize(ours, Ours, theirs).item() == pytest.approx((0.75 - 0.25) / 0.5)


def experiment(**options):
    return {
        "name": "codes-test",
        "seed": 0,
        "data": {
            "source": "digits",
            "select": {"classes": ["5", "6", "7"], "range": [0.5, 1.0]},
            "split": {"method": "ordered", "val": 0.2, "test": 0.3},
        },
        "model": {"preset": "mlp", "options": {"hidden": [16, 8]}},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.01},
        "experiment": {
            "kind": "codes",
            "source": {"data": {"select": {"classes": ["0", "1", "2"], "range": [0.0, 0.5]}}},
            "seeds": [0],
            "shots": [1, 3],
            "draws": 2,
            "Cs": [0.1, 1.0],
            **options,
        },
    }


def test_the_plan_holds_every_baseline_and_the_few_shot_trials():
    spec = parse_experiment(experiment(seeds=[0, 1]))
    trials = {t.key: t for t in Codes().plan(spec.base, spec.options, {})}
    for seed in (0, 1):
        for method in ("source", "codes", "earlier", "pixels", "random", "finetune", "scratch"):
            assert f"{method}/seed={seed}" in trials
        assert trials[f"finetune/seed={seed}"].config["model"]["init_from"] == f"trial:source/seed={seed}"
        assert trials[f"finetune/seed={seed}"].config["model"]["init_skip"] == ["out"]  # a fresh head
        assert trials[f"source/seed={seed}"].config["data"]["select"]["classes"] == ["0", "1", "2"]
        assert trials[f"scratch/seed={seed}"].config["data"]["select"]["classes"] == ["5", "6", "7"]
    assert trials["pixels/seed=0"].needs == () and trials["codes/seed=0"].needs == ("source/seed=0",)
    assert {"fewshot/k=1", "fewshot/k=3"} <= set(trials)


def test_a_layer_the_source_lacks_is_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match="no layer 'fc7'.*layers: flatten_1, fc1"):
        run_local(experiment(layer="fc7"), tmp_path / "exp")
    assert not (tmp_path / "exp" / "trials").exists()


def test_digits_0_2_of_some_examples_transfer_to_digits_5_7_of_others_end_to_end(tmp_path):
    outcome = run_local(experiment(), tmp_path / "exp")
    rows = {row["method"]: row for row in outcome.report.rows}
    assert len(rows) == 6 and all(row["n"] == 1 for row in rows.values())
    assert rows["CNN codes + linear classifier"]["features"] == "input of out"
    assert rows["raw pixels + linear classifier"]["dimensions"] == 64
    assert all(0.0 <= row["mean"] <= 1.0 for row in rows.values())
    assert any("regime" in line for line in outcome.report.findings)
    assert [r["k"] for r in outcome.report.extra["fewshot"]] == [1, 3]
    pixels = outcome.results["pixels/seed=0"].summary
    assert pixels["classes"] == ["5", "6", "7"] and pixels["convergence_warnings"] == 0
