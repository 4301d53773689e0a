"""The CoordConv study's report: our table over seeds, the paper's figures beside it, plain findings.

Accuracy is the fraction of examples put on the right pixel: the run's own train and test
accuracy for classification, the ``coordconv_pixels`` probe's for regression (prediction rounded
to the right pixel on both axes), with the probe's MSE beside it. Every number is a mean over the
seeds that completed, with a Student-t interval (``research/stats.py``).
"""

from __future__ import annotations

from collections.abc import Mapping

from layerlab.research.base import Plot, Report, TrialResult
from layerlab.research.kinds.coordconv import (
    FITTED,
    NEAR_ZERO,
    PROBE_SUFFIX,
    SOLVED,
    CoordConvOptions,
    trial_key,
)
from layerlab.research.stats import mean_ci

COLUMNS = [
    "task", "split", "model", "parameters", "seeds", "train_accuracy", "train_ci", "test_accuracy", "test_ci",
    "test_mse", "seconds",
]  # fmt: skip

PAPER_SOURCE = (
    "Liu et al. 2018, 'An intriguing failing of convolutional neural networks and the CoordConv solution' "
    "(NeurIPS; arXiv:1807.03247): abstract, Figs. 3-4 and the Uber AI blog's figure captions. The paper "
    "gives most of these as plots; where it states no number we write 'reported qualitatively'."
)
QUALITATIVE = "reported qualitatively"
PAPER_ROWS = [
    {
        "task": "classification", "model": "coordconv", "split": "uniform", "train_accuracy": "100%",
        "test_accuracy": "100%", "seconds": "seconds (150x faster than conv: abstract)",
        "notes": "perfect on both splits (Fig. 4); 10-100x fewer parameters than conv (abstract)",
    },
    {
        "task": "classification", "model": "coordconv", "split": "quadrant", "train_accuracy": "100%",
        "test_accuracy": "100%", "seconds": "seconds", "notes": "perfect on both splits (Fig. 4)",
    },
    {
        "task": "classification", "model": "deconv", "split": "uniform",
        "train_accuracy": "up to 100% (some models memorize the training set)",
        "test_accuracy": "at most 86%", "seconds": "over an hour to reach 86%",
        "notes": "best of a hyperparameter search (Fig. 3b); fails to generalize even one pixel away",
    },
    {
        "task": "classification", "model": "deconv", "split": "quadrant", "train_accuracy": QUALITATIVE,
        "test_accuracy": f"{QUALITATIVE}: far below uniform (plot only)",
        "seconds": QUALITATIVE, "notes": "the held-out quadrant is never seen (Fig. 3b)",
    },
    {
        "task": "classification", "model": "conv", "split": "both", "train_accuracy": "not in the paper",
        "test_accuracy": "not in the paper", "seconds": "-",
        "notes": "our plain baseline: the tiled (i, j) through 3x3 convs",
    },
    {
        "task": "regression", "model": "coordconv", "split": "both", "train_accuracy": QUALITATIVE,
        "test_accuracy": f"{QUALITATIVE}: perfect generalization", "seconds": QUALITATIVE,
        "notes": "the inverse task (pixel to coordinates) shows the classification pattern",
    },
    {
        "task": "regression", "model": "conv", "split": "both", "train_accuracy": QUALITATIVE,
        "test_accuracy": f"{QUALITATIVE}: generalizes poorly, worst on quadrant", "seconds": QUALITATIVE,
        "notes": "official conv regressors: conv-pool + dense (uniform), strided convs (quadrant)",
    },
]  # fmt: skip


def _scores(options: CoordConvOptions, results: Mapping[str, TrialResult], task: str, split: str, model: str):
    """Per seed: (train accuracy, test accuracy, test MSE, seconds, parameters) of the completed trials."""
    rows = []
    for seed in options.seeds:
        run = results.get(trial_key(task, split, model, seed))
        if run is None or not run.ok:
            continue
        scored = run
        if task == "regression":
            scored = results.get(f"{trial_key(task, split, model, seed)}/{PROBE_SUFFIX}")
            if scored is None or not scored.ok:
                continue
        rows.append(
            (
                scored.metric("train_accuracy"),
                scored.metric("test_accuracy"),
                scored.metric("test_mse"),
                run.seconds,
                run.metric("parameters"),
            )
        )
    return rows


def _mean(values: list, level: float) -> tuple:
    return mean_ci([v for v in values if v is not None], level)


def _accuracy_ci(values: list, level: float) -> tuple:
    """The mean and its Student-t interval, clipped to [0, 1]: an accuracy is a fraction (with two seeds
    the t factor is 12.7, and an interval past 100% says only that the seeds disagree)."""
    mean, lo, hi = _mean(values, level)
    if lo is None or hi is None:
        return mean, lo, hi
    return mean, max(0.0, lo), min(1.0, hi)


def _row(options: CoordConvOptions, results, task: str, split: str, model: str) -> dict:
    scores = _scores(options, results, task, split, model)
    columns = list(zip(*scores, strict=True)) if scores else [[], [], [], [], []]
    train, test, mse, seconds, params = ([v for v in c if v is not None] for c in columns)
    train_m, train_lo, train_hi = _accuracy_ci(train, options.level)
    test_m, test_lo, test_hi = _accuracy_ci(test, options.level)
    return {
        "task": task,
        "split": split,
        "model": model,
        "parameters": int(params[0]) if params else None,
        "seeds": len(scores),
        "train_accuracy": _round(train_m),
        "train_ci": _interval(train_lo, train_hi),
        "test_accuracy": _round(test_m),
        "test_ci": _interval(test_lo, test_hi),
        "test_mse": _significant(_mean(mse, options.level)[0]) if task == "regression" else None,
        "seconds": _round(_mean(seconds, options.level)[0], 1),
        "_ci": {"train": (train_m, train_lo, train_hi), "test": (test_m, test_lo, test_hi)},
        "_per_seed": {"train": list(train), "test": list(test)},
    }


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _significant(value: float | None, digits: int = 3) -> float | None:
    """Three significant digits: an MSE of 1.6e-13 must not print as 0."""
    return None if value is None else float(f"{float(value):.{digits}g}")


def _interval(lo: float | None, hi: float | None) -> str:
    return "-" if lo is None or hi is None else f"[{lo:.3f}, {hi:.3f}]"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _spread(row: dict, which: str = "test") -> str:
    """`` (seeds: 100.0%, 0.0%)`` when the seeds disagree by more than 5 points, else nothing."""
    values = row["_per_seed"][which]
    if len(values) < 2 or max(values) - min(values) <= 0.05:
        return ""
    return " (seeds: " + ", ".join(_pct(v) for v in values) + ")"


def _lookup(rows: list[dict], task: str, split: str, model: str) -> dict | None:
    found = [r for r in rows if (r["task"], r["split"], r["model"]) == (task, split, model)]
    return found[0] if found and found[0]["seeds"] else None


def _coordconv_findings(rows: list[dict]) -> list[str]:
    findings = []
    for split in ("uniform", "quadrant"):
        row = _lookup(rows, "classification", split, "coordconv")
        if row is None:
            continue
        solved = (row["test_accuracy"] or 0) >= SOLVED and (row["train_accuracy"] or 0) >= SOLVED
        verdict = "as the paper (100% / 100%)" if solved else "short of the paper's 100% / 100%"
        findings.append(
            f"CoordConv classification, {split} split: train {_pct(row['train_accuracy'])}, test "
            f"{_pct(row['test_accuracy'])}{_spread(row)} in {row['seconds']} s per run, {verdict}."
        )
    return findings


def _deconv_findings(rows: list[dict]) -> list[str]:
    uniform = _lookup(rows, "classification", "uniform", "deconv")
    quadrant = _lookup(rows, "classification", "quadrant", "deconv")
    findings = []
    if uniform is not None:
        train, test = uniform["train_accuracy"] or 0, uniform["test_accuracy"] or 0
        paper = "the paper: train up to 100%, test at most 86%, after up to 2000 epochs"
        if train >= FITTED and train - test > 0.05:
            verdict = f"it fits train far better than it generalizes, the paper's pattern ({paper})"
        elif train >= FITTED:
            verdict = f"it fits train and generalizes as well, unlike the paper ({paper})"
        elif train - test > 0.05:
            verdict = f"it has NOT fitted the training set at this budget, though test already trails train ({paper})"
        else:
            verdict = (
                f"it has NOT fitted the training set at this budget and shows no train-test gap ({paper})"
            )
        findings.append(
            f"Deconv classification, uniform split: train {_pct(uniform['train_accuracy'])}, test "
            f"{_pct(uniform['test_accuracy'])}: {verdict}."
        )
    if quadrant is not None:
        zero = (quadrant["test_accuracy"] or 0) <= NEAR_ZERO
        findings.append(
            f"Deconv classification, quadrant split: train {_pct(quadrant['train_accuracy'])}, test "
            f"{_pct(quadrant['test_accuracy'])}: "
            + (
                "about 0% on the held-out quadrant, the expected failure."
                if zero
                else "above the expected ~0%."
            )
        )
    return findings


def _conv_findings(rows: list[dict]) -> list[str]:
    findings = []
    for split in ("uniform", "quadrant"):
        conv = _lookup(rows, "classification", split, "conv")
        coord = _lookup(rows, "classification", split, "coordconv")
        if conv is None:
            continue
        text = (
            f"Plain conv classification (our baseline), {split} split: train {_pct(conv['train_accuracy'])}, "
            f"test {_pct(conv['test_accuracy'])}"
        )
        if coord is not None and coord["test_accuracy"] is not None and conv["test_accuracy"] is not None:
            text += f" against CoordConv's {_pct(coord['test_accuracy'])}"
        findings.append(text + ".")
    return findings


def _regression_findings(rows: list[dict]) -> list[str]:
    findings = []
    for split in ("uniform", "quadrant"):
        coord = _lookup(rows, "regression", split, "coordconv")
        conv = _lookup(rows, "regression", split, "conv")
        if coord is None and conv is None:
            continue
        parts = [
            f"{name} test {_pct(row['test_accuracy'])}{_spread(row)} (MSE {row['test_mse']})"
            for name, row in (("CoordConv", coord), ("conv", conv))
            if row is not None
        ]
        text = f"Regression (right pixel), {split} split: " + ", ".join(parts)
        if coord is not None and conv is not None:
            far = (coord["test_accuracy"] or 0) - (conv["test_accuracy"] or 0) >= 0.3
            text += (
                ": the conv baseline is far below CoordConv, as the paper."
                if far
                else ": the conv baseline is NOT far below CoordConv here."
            )
        findings.append(text + ("" if text.endswith(".") else "."))
    return findings


SHORT_TASK = {"classification": "cls", "regression": "reg"}


def _label(row: dict) -> str:
    """``cls coordconv``: short enough for five bar groups side by side."""
    return f"{SHORT_TASK[row['task']]} {row['model']}"


def _plots(rows: list[dict], splits: list[str]) -> list[Plot]:
    labels = list(dict.fromkeys(_label(r) for r in rows))
    plots = []
    for which in ("test", "train"):
        series = []
        for split in splits:
            by_label = {_label(r): r["_ci"][which] for r in rows if r["split"] == split}
            means = [by_label.get(label, (None, None, None)) for label in labels]
            series.append(
                {
                    "label": split,
                    "x": labels,
                    "y": [m[0] for m in means],
                    "lo": [m[1] for m in means],
                    "hi": [m[2] for m in means],
                }
            )
        plots.append(
            Plot(
                name=f"{which}_accuracy",
                title=f"{which.capitalize()} accuracy (right pixel) per model and split",
                x_label="task (cls: classification, reg: regression) and model",
                y_label=f"{which} accuracy",
                series=series,
                kind="bar",
                hlines=[{"y": 1.0, "label": "100%"}],
            )
        )
    return plots


def build_report(base: dict, options: CoordConvOptions, results: Mapping[str, TrialResult]) -> Report:
    """The study's table (one row per task, split and model), findings, plots and the paper's table."""
    rows = [_row(options, results, task, split, model) for task, split, model in options.grid()]
    findings = (
        _coordconv_findings(rows) + _deconv_findings(rows) + _conv_findings(rows) + _regression_findings(rows)
    )
    missing = sum(len(options.seeds) - r["seeds"] for r in rows)
    if missing:
        findings.append(f"{missing} trial(s) did not complete and are left out of the means.")
    if not any(r["seeds"] for r in rows):
        findings = ["no trial completed, so there is nothing to compare with the paper"]
    plots = _plots(rows, list(options.splits))
    extra = {
        "level": options.level,
        "seeds": list(options.seeds),
        "intervals": {f"{r['task']}/{r['split']}/{r['model']}": r["_ci"] for r in rows},
    }
    for row in rows:
        del row["_ci"], row["_per_seed"]
    return Report(
        title=f"CoordConv study ({base.get('name') or 'coordconv'}): Not-so-Clevr, {len(options.seeds)} seed(s)",
        columns=list(COLUMNS),
        rows=rows,
        findings=findings,
        plots=plots,
        reference={
            "source": PAPER_SOURCE,
            "columns": ["task", "model", "split", "train_accuracy", "test_accuracy", "seconds", "notes"],
            "rows": [dict(r) for r in PAPER_ROWS],
        },
        extra=extra,
    )
