"""The report of the ``codes`` experiment: every method on the same split, the few-shot curve, the regime.

Findings are stated plainly: which method wins, whether the codes beat the raw pixels (and say so when
they do not), the Welch p-values behind each comparison, and which of CS231n's four regimes the result
supports next to the regime the data's size suggests.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from layerlab.research.base import Plot, Report, TrialResult
from layerlab.research.kinds.codes import METHODS, PROBED, REGIMES, SIGNIFICANCE, TRAINED
from layerlab.research.stats import fmt_ci, mean_ci, welch

SHORT = {  # the bar chart's labels
    "codes": "codes",
    "earlier": "earlier codes",
    "pixels": "pixels",
    "random": "random-init codes",
    "finetune": "fine-tune",
    "scratch": "scratch",
}

REFERENCE = {
    "source": "CS231n, Transfer Learning (cs231n.github.io/transfer-learning): what to do in each regime",
    "columns": ["new data", "similar to the source", "different from the source"],
    "rows": [
        {"new data": "small", "similar to the source": REGIMES[("small", "similar")],
         "different from the source": REGIMES[("small", "different")]},
        {"new data": "large", "similar to the source": REGIMES[("large", "similar")],
         "different from the source": REGIMES[("large", "different")]},
    ],
}  # fmt: skip


def _values(results: Mapping[str, TrialResult], method: str, seeds) -> list[float]:
    out = []
    for seed in seeds:
        result = results.get(f"{method}/seed={seed}")
        value = result.metric("test_accuracy") if result is not None and result.ok else None
        if value is not None:
            out.append(float(value))
    return out


def _row(method: str, values: list[float], results, seeds, level: float) -> dict:
    mean, lo, hi = mean_ci(values, level)
    done = [results[f"{method}/seed={s}"] for s in seeds if f"{method}/seed={s}" in results]
    ok = [r for r in done if r.ok]
    layer = next((r.metric("layer") for r in ok if r.metric("layer")), None)
    side = next((r.metric("side") for r in ok if r.metric("side")), None)
    Cs = [r.metric("C") for r in ok if r.metric("C") is not None]
    return {
        "method": METHODS[method],
        "features": f"{side} of {layer}" if layer else ("pixels" if method == "pixels" else "-"),
        "test_accuracy": fmt_ci(mean, lo, hi),
        "mean": mean,
        "lo": lo,
        "hi": hi,
        "n": len(values),
        "C": statistics.median(Cs) if Cs else None,
        "dimensions": next((r.metric("dimensions") for r in ok if r.metric("dimensions")), None),
        "convergence_warnings": sum(int(r.metric("convergence_warnings", 0)) for r in ok)
        if method in PROBED
        else None,
        "failed": len(done) - len(ok),
        "seconds": round(sum(r.seconds for r in done), 1),
    }


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def _versus(a: str, b: str, values: dict) -> str:
    """One plain sentence: ``a``'s mean test accuracy against ``b``'s, Welch's p and whether it is significant."""
    x, y = values[a], values[b]
    if not x or not y:
        return f"{METHODS[a]} vs {METHODS[b]}: not enough completed trials to compare."
    p = welch(x, y)
    if p is None:
        verdict = "one trial a side gives no test: add seeds"
    elif p < SIGNIFICANCE:
        higher = "higher" if _mean(x) > _mean(y) else "lower"
        verdict = f"Welch p = {p:.3g}: significantly {higher} at the {SIGNIFICANCE:g} level"
    else:
        verdict = f"Welch p = {p:.3g}: no significant difference at the {SIGNIFICANCE:g} level"
    return f"{METHODS[a]}: {_mean(x):.3f} vs {_mean(y):.3f} for {METHODS[b]} ({verdict})."


def _against_pixels(values: dict) -> str | None:
    """The honest first line: do the codes beat the raw pixels at all?"""
    if not values["pixels"]:
        return None
    pixels = _mean(values["pixels"])
    lose = [m for m in ("codes", "earlier") if values[m] and _mean(values[m]) <= pixels]
    win = [m for m in ("codes", "earlier") if values[m] and _mean(values[m]) > pixels]
    if not lose:
        return None
    text = " and ".join(f"{METHODS[m]} ({_mean(values[m]):.3f})" for m in lose)
    line = f"Honest note: {text} do NOT beat the raw pixels ({pixels:.3f}) on this split"
    if win:
        line += "; " + " and ".join(f"{METHODS[m]} ({_mean(values[m]):.3f})" for m in win) + " do"
    return line + "."


def _regime(values: dict, per_class: float | None, large_per_class: int) -> list[str]:
    """Which regime the data's size suggests, which one the winner supports, and whether they agree."""
    means = {m: sum(v) / len(v) for m, v in values.items() if v}
    if not means:
        return []
    size = "large" if per_class is not None and per_class >= large_per_class else "small"
    similar, evidence = "similar", "assumed: no random-init codes to compare"
    if values.get("codes") and values.get("random"):
        gain = means["codes"] - means["random"]
        p = welch(values["codes"], values["random"])
        similar = "similar" if gain > 0 and (p is None or p < SIGNIFICANCE) else "different"
        shown = "no test" if p is None else f"Welch p = {p:.3g}"
        evidence = (
            f"the source's codes {means['codes']:.3f} vs random-init codes {means['random']:.3f}, {shown}"
        )
    winner = max(means, key=means.get)
    supported = {
        "codes": ("small", "similar"),
        "earlier": ("small", "different"),
        "finetune": ("large", "similar"),
        "scratch": ("large", "different"),
    }.get(winner)
    lines = [
        f"The new data is {size} ({per_class:.0f} training examples per class; 'large' from {large_per_class})"
        if per_class is not None
        else f"The new data counts as {size}",
    ]
    preposition = "to" if similar == "similar" else "from"
    lines[0] += (
        f" and {similar} {preposition} the source as far as its last-layer features go ({evidence}): "
        f"CS231n advises to {REGIMES[(size, similar)]}."
    )
    if supported is None:
        lines.append(
            f"The best method is {METHODS[winner]}, which none of the four regimes recommends: the source "
            "network's features did not help here."
        )
    else:
        agree = "agrees with" if supported == (size, similar) else "does not match"
        lines.append(
            f"The best method is {METHODS[winner]} ({means[winner]:.3f}), which supports the "
            f"{supported[0]}-and-{supported[1]} regime; that {agree} the regime the data suggests."
        )
    return lines


def _fewshot(results: Mapping[str, TrialResult], shots, level: float) -> tuple[list[dict], Plot | None]:
    rows, series = [], {}
    for k in shots:
        result = results.get(f"fewshot/k={k}")
        if result is None or not result.ok:
            continue
        row = {"k": k, "available_per_class": result.metric("available_per_class")}
        for kind in ("codes", "pixels"):
            scores = result.metric(kind) or []
            mean, lo, hi = mean_ci(scores, level)
            row[kind] = fmt_ci(mean, lo, hi)
            line = series.setdefault(kind, {"label": METHODS[kind], "x": [], "y": [], "lo": [], "hi": []})
            line["x"].append(k), line["y"].append(mean), line["lo"].append(lo), line["hi"].append(hi)
        rows.append(row)
    if not rows:
        return rows, None
    plot = Plot(
        name="fewshot",
        title="Few-shot: test accuracy with k training examples per class",
        x_label="k (examples per class)",
        y_label="test accuracy",
        series=list(series.values()),
        log_x=True,
    )
    return rows, plot


def codes_report(base: dict, options, results: Mapping[str, TrialResult]) -> Report:
    seeds, level = options.seeds, options.level
    methods = [*PROBED, *TRAINED]
    values = {m: _values(results, m, seeds) for m in methods}
    rows = [_row(m, values[m], results, seeds, level) for m in methods]
    per_class = _per_class(results, seeds)
    findings = [
        _versus("codes", "pixels", values),
        _versus("codes", "random", values),
        _versus("codes", "finetune", values),
        _versus("finetune", "scratch", values),
        _versus("earlier", "codes", values),
        _versus("earlier", "pixels", values),
    ]
    honest = _against_pixels(values)
    if honest:
        findings.insert(0, honest)
    findings += _regime({m: v for m, v in values.items() if v}, per_class, options.large_per_class)
    warned = sum(r["convergence_warnings"] or 0 for r in rows)
    if warned:
        findings.append(
            f"{warned} linear fit(s) still warned of non-convergence after raising max_iter (counted per row)."
        )
    few_rows, few_plot = _fewshot(results, options.shots, level)
    plots = [
        Plot(
            name="methods",
            title="Test accuracy on the new data (mean and interval over seeds)",
            x_label="method",
            y_label="test accuracy",
            kind="bar",
            series=[
                {
                    "label": "test accuracy",
                    "x": [SHORT[m] for m in methods],
                    "y": [r["mean"] for r in rows],
                    "lo": [r["lo"] for r in rows],
                    "hi": [r["hi"] for r in rows],
                }
            ],
        )
    ]
    if few_plot is not None:
        plots.append(few_plot)
    return Report(
        title=f"{base.get('name') or 'CNN codes'}: transfer to new data over {len(seeds)} seed(s)",
        columns=[
            "method",
            "features",
            "test_accuracy",
            "n",
            "C",
            "dimensions",
            "convergence_warnings",
            "seconds",
        ],
        rows=rows,
        findings=findings,
        plots=plots,
        reference=REFERENCE,
        extra={"fewshot": few_rows, "per_class": per_class, "values": values, "level": level},
    )


def _per_class(results: Mapping[str, TrialResult], seeds) -> float | None:
    """Training examples per class of the new data (from a probe's metrics)."""
    for seed in seeds:
        result = results.get(f"pixels/seed={seed}")
        if result is not None and result.ok and result.metric("classes"):
            return result.metric("train_examples") / len(result.metric("classes"))
    return None
