"""The curriculum experiment: its planning grid, the significance sentences, the plain 'no gain' verdict."""

from __future__ import annotations

import pytest

from layerlab.core.errors import ConfigError
from layerlab.research.base import TrialResult
from layerlab.research.kinds.curriculum import CurriculumKind, significance_sentence
from layerlab.research.spec import parse_experiment
from layerlab.train.config import experiment_from_mapping


def experiment(**options):
    return {
        "seed": 0,
        "data": {"source": "digits", "limit": 200},
        "model": {"preset": "mlp", "options": {"hidden": [8]}},
        "train": {"epochs": 8, "batch_size": 32},
        "experiment": {"kind": "curriculum", **options},
    }


def plan(**options):
    spec = parse_experiment(experiment(**options))
    return spec, {t.key: t for t in CurriculumKind().plan(spec.base, spec.options, {})}


def test_the_grid_is_noise_x_budget_x_condition_x_seed_with_one_teacher_per_noise_level():
    spec, trials = plan()
    teachers = [k for k in trials if k.startswith("teacher/")]
    assert teachers == ["teacher/noise=0", "teacher/noise=0.4"]
    runs = [t for k, t in trials.items() if not k.startswith("teacher/")]
    assert len(runs) == 2 * 2 * 4 * 5  # noise {0, 0.4} x budgets {8, 2} x 4 conditions x 5 seeds
    cur = trials["curriculum/noise=0.4/epochs=2/seed=3"]
    assert cur.needs == ("teacher/noise=0.4",) and cur.config["seed"] == 3
    assert cur.config["data"]["label_noise"] == 0.4 and cur.config["train"]["epochs"] == 2
    curriculum = cur.config["train"]["curriculum"]
    assert curriculum["order"] == "easy_first" and curriculum["until_epoch"] == 1
    assert curriculum["score"] == {"run": "trial:teacher/noise=0.4", "by": "loss"}
    anti = trials["anti/noise=0/epochs=8/seed=0"].config["train"]["curriculum"]
    assert anti["order"] == "hard_first" and anti["until_epoch"] == 4
    random = trials["random/noise=0/epochs=8/seed=0"]
    assert random.needs == () and "score" not in random.config["train"]["curriculum"]
    assert "curriculum" not in trials["plain/noise=0/epochs=8/seed=0"].config["train"]
    for trial in trials.values():  # every planned config is a valid run config
        experiment_from_mapping(trial.config)


def test_fewer_than_five_seeds_or_an_unknown_condition_is_refused():
    with pytest.raises(ConfigError, match="at least 5 seeds"):
        parse_experiment(experiment(seeds=[0, 1]))
    with pytest.raises(ConfigError, match="unknown condition 'antii'"):
        parse_experiment(experiment(conditions=["plain", "antii"]))
    with pytest.raises(ConfigError, match=r"experiment.noise: noise\[0\] must be in \[0, 1\), got 1.5"):
        parse_experiment(experiment(noise=[1.5]))


def test_the_significance_sentence_says_plainly_whether_the_gap_is_significant():
    same = significance_sentence("curriculum", [0.90, 0.91, 0.92], [0.90, 0.915, 0.91], 0.6)
    assert same == (
        "curriculum: 0.910 vs 0.908 for plain training (Welch p = 0.6): "
        "no significant difference at the 0.05 level."
    )
    better = significance_sentence("curriculum", [0.95, 0.96], [0.90, 0.91], 0.01)
    assert "significantly better at the 0.05 level" in better
    assert "significantly worse" in significance_sentence("anti", [0.8, 0.81], [0.9, 0.91], 0.001)
    assert "too few completed seeds" in significance_sentence("anti", [0.8], [0.9, 0.91], None)


def results_for(spec, accuracy):
    out = {}
    for trial in CurriculumKind().plan(spec.base, spec.options, {}):
        labels = trial.labels
        value = accuracy(labels["condition"], labels["noise"], labels.get("seed", 0))
        out[trial.key] = TrialResult(trial.key, "completed", {"test_accuracy": value}, None, 1.0)
    return out


def test_the_report_says_no_gain_plainly_and_names_a_significant_gain():
    spec, _ = plan(budgets=[8])
    flat = results_for(spec, lambda c, n, s: 0.9 + 0.001 * ((s * 7 + len(c)) % 5))
    report = CurriculumKind().report(spec.base, spec.options, flat)
    assert report.findings[0].startswith(
        "No gain: no ordering beat plain training significantly in any setting"
    )
    assert len([r for r in report.rows if r["condition"] == "plain training"]) == 2
    noisy = results_for(spec, lambda c, n, s: (0.95 if c == "curriculum" and n > 0 else 0.8) + 0.002 * s)
    report = CurriculumKind().report(spec.base, spec.options, noisy)
    assert report.findings[0] == (
        "Significant gains over plain training: curriculum (easy first) at label noise 0.4 with 8 epochs."
    )
    row = next(r for r in report.rows if r["condition"] == "curriculum (easy first)" and r["noise"] == 0.4)
    assert row["significant"] is True and row["p_vs_plain"] < 0.05 and row["n"] == 5
