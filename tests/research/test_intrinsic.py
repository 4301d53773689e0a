"""The intrinsic_dimension experiment: a tiny end-to-end run, the doubling search, d_int90 arithmetic."""

from __future__ import annotations

import json

import pytest

from layerlab.core.errors import ConfigError
from layerlab.research.base import TrialResult
from layerlab.research.kinds.intrinsic_report import crossing, reaches
from layerlab.research.local import run_local
from layerlab.research.spec import parse_experiment


def experiment(**options):
    return {
        "seed": 0,
        "data": {"source": "spiral"},
        "model": {"preset": "mlp", "options": {"hidden": [16]}},  # D = 99
        "train": {"epochs": 3, "batch_size": 32, "lr": 0.02},
        "experiment": {"kind": "intrinsic_dimension", **options},
    }


def test_a_tiny_run_reports_d_int90_under_both_definitions(tmp_path):
    config = experiment(dims=[4, 40], seeds=[0, 1], baseline_epochs=3, epochs=3, lr=0.05, bootstrap=200)
    outcome = run_local(config, tmp_path / "exp", device="cpu")
    assert len(outcome.results) == 6 and all(r.ok for r in outcome.results.values())
    sub = outcome.results["model/d=40/seed=1"].summary
    assert sub["subspace"] == {"projection": "fastfood", "dim": 40, "parameters": 99, "seed": 1}
    report = outcome.report
    (row,) = report.rows
    assert row["model"] == "model" and row["D"] == 99
    assert {"d_int90 (90% of baseline)", "d_int90 (90% absolute)", "interval", "interval (abs)"} <= set(row)
    (summary,) = report.extra["models"]
    assert set(summary) >= {"relative", "absolute", "baseline", "points"}
    assert [p["d"] for p in summary["points"]] == [4, 40] and summary["baseline"]["n"] == 2
    for definition in ("relative", "absolute"):
        assert {"d", "interpolated", "lo", "hi"} <= set(summary[definition])
    (plot,) = report.plots
    assert plot.log_x and [h["label"] for h in plot.hlines][:2] == ["90% absolute", "90% of model baseline"]
    assert report.reference["rows"][0]["d_int90"] == 750
    written = json.loads((tmp_path / "exp" / "report.json").read_text())
    assert written["reference"]["rows"][1] == {"network": "LeNet", "D": 44426, "d_int90": 290}
    assert (tmp_path / "exp" / "plots" / "accuracy_vs_d.png").is_file()


def _result(key, value, ok=True):
    return TrialResult(key, "completed" if ok else "failed", {"test_accuracy": value}, None, 1.0)


def test_the_doubling_search_adds_a_d_until_the_threshold_is_reached():
    spec = parse_experiment(experiment(search={"start": 5, "max": 80}, seeds=[0]))
    keys = lambda done: [t.key for t in spec.kind.plan(spec.base, spec.options, done)]  # noqa: E731
    assert keys({}) == ["model/baseline/seed=0", "model/d=5/seed=0"]
    done = {"model/baseline/seed=0": _result("b", 0.8), "model/d=5/seed=0": _result("a", 0.5)}
    assert keys(done)[-1] == "model/d=10/seed=0"
    done["model/d=10/seed=0"] = _result("c", 0.75)  # 0.75 >= 0.9 * 0.8: reached (the baseline is below 90%)
    assert keys(done)[-1] == "model/d=10/seed=0"


def test_the_doubling_search_stops_at_the_parameter_count():
    spec = parse_experiment(experiment(search={"start": 50, "max": 10_000}, seeds=[0]))
    done = {"model/baseline/seed=0": _result("b", 0.99), "model/d=50/seed=0": _result("a", 0.4)}
    planned = [t.key for t in spec.kind.plan(spec.base, spec.options, done)]
    assert planned[-1] == "model/d=99/seed=0"  # min(100, D = 99)
    done["model/d=99/seed=0"] = _result("c", 0.5)
    assert [t.key for t in spec.kind.plan(spec.base, spec.options, done)][-1] == "model/d=99/seed=0"


def test_crossing_interpolates_in_log_d_and_reaches():
    assert crossing([(10, 0.5), (100, 0.9)], 0.7)[0] == 100
    assert crossing([(10, 0.5), (100, 0.9)], 0.7)[1] == pytest.approx(10**1.5)
    assert crossing([(10, 0.95)], 0.9) == (10, 10.0)
    assert crossing([(10, 0.5), (20, 0.6)], 0.9) == (None, None)
    assert reaches(0.89, 0.98, 0.9) is False and reaches(0.91, 0.98, 0.9) is True
    assert reaches(0.73, 0.8, 0.9) is True  # the baseline is below 90%: the absolute target is out of reach


@pytest.mark.parametrize(
    "options,match",
    [
        ({"dims": [5, 500]}, "d = 500 is larger than the model network's 99 parameters"),
        ({"dims": [5], "search": {"start": 5}}, "give either dims"),
        ({}, "give either dims"),
        ({"dims": [0]}, "dims\\[0\\] must be in"),
        ({"dims": [5, 5]}, "a dim is given twice"),
        ({"dims": [5], "seeds": []}, "seeds"),
        ({"dims": [5], "models": {"bad name": {"preset": "mlp"}}}, "model name 'bad name'"),
        ({"dims": [5], "models": {"fc": {"prest": "mlp"}}}, "unknown key 'prest'"),
        ({"search": {"start": 50, "max": 10}}, "start 50 is above max 10"),
        ({"dims": [5], "lr": float("nan")}, "experiment.lr"),
        ({"dims": [5], "models": {"..": {"preset": "mlp"}}}, "model name '..'"),
    ],
)
def test_bad_options_are_one_clear_line(options, match):
    with pytest.raises(ConfigError, match=match):
        parse_experiment(experiment(**options))


def test_a_base_config_that_cannot_train_a_subspace_is_refused_before_any_run():
    config = experiment(dims=[5])
    config["train"]["l2"] = 0.01
    with pytest.raises(ConfigError, match="train.l1/l2: does not combine with train.subspace"):
        parse_experiment(config)
