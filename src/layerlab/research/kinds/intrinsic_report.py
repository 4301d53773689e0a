"""The intrinsic-dimension report: accuracy per d, d_int90 both ways with bootstrap intervals, the paper's table.

The paper's two definitions, with ``threshold`` 0.9:

- **relative**: the smallest d whose accuracy reaches 90% of the baseline's (direct training);
- **absolute**: the smallest d whose accuracy reaches 90%.

Each is computed on the mean accuracy over seeds at each d (and the mean baseline). ``d_int90`` is
the smallest d tried that reaches the target; ``interpolated`` places the crossing between it and the
d before it, linearly in log d (the sweep's grid otherwise decides the number). The bootstrap interval
resamples the seeds (each seed's baseline and curve together) and recomputes the interpolated value;
resamples that never reach the target are counted, not hidden.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from layerlab.research.base import Plot, Report, TrialResult
from layerlab.research.stats import bootstrap_ci, mean_ci

REFERENCE = {
    "source": "Li, Farkhoor, Liu, Yosinski (ICLR 2018), Table 1 / Section 3.1: full MNIST (60,000 training images)",
    "columns": ["network", "D", "d_int90"],
    "rows": [
        {"network": "FC 784-200-200-10", "D": 199_210, "d_int90": 750},
        {"network": "LeNet", "D": 44_426, "d_int90": 290},
    ],
}
NOT_REACHED = 1e300  # a bootstrap resample that never reaches the target: beyond every d tried
COLUMNS = [
    "model", "D", "baseline", "d_int90 (90% of baseline)", "interpolated", "interval",
    "d_int90 (90% absolute)", "interpolated (abs)", "interval (abs)", "best subspace", "trials",
]  # fmt: skip


def baseline_key(model: str, seed: int) -> str:
    return f"{model}/baseline/seed={seed}"


def subspace_key(model: str, d: int, seed: int) -> str:
    return f"{model}/d={d}/seed={seed}"


def reaches(mean: float, baseline: float, threshold: float) -> bool:
    """Whether a d is far enough for a doubling search: 90% of the baseline, and 90% itself when the
    baseline reaches 90% (else the absolute target is out of reach for every d)."""
    if mean < threshold * baseline:
        return False
    return baseline < threshold or mean >= threshold


def crossing(curve: list[tuple[int, float]], target: float) -> tuple[int | None, float | None]:
    """``(first d reaching target, interpolated d)`` on a curve sorted by d; (None, None) when none does.

    The interpolation is linear in log d between the d before the first reaching one and it; when the
    smallest d already reaches the target, both numbers are that d (an upper bound: try smaller d).
    """
    for i, (d, value) in enumerate(curve):
        if value >= target:
            if i == 0:
                return d, float(d)
            d0, v0 = curve[i - 1]
            share = (target - v0) / (value - v0) if value > v0 else 1.0
            return d, math.exp(math.log(d0) + share * (math.log(d) - math.log(d0)))
    return None, None


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def seed_records(model: str, options, results: Mapping[str, TrialResult]) -> list[dict]:
    """Per seed: its baseline value and its value at each d (completed trials only)."""
    records = []
    for seed in options.seeds:
        base = results.get(baseline_key(model, seed))
        curve = {}
        prefix = f"{model}/d="
        for key, result in results.items():
            if key.startswith(prefix) and key.endswith(f"/seed={seed}") and result.ok:
                d = int(key[len(prefix) :].split("/", 1)[0])
                value = result.metric(options.metric)
                if value is not None:
                    curve[d] = float(value)
        baseline = base.metric(options.metric) if base is not None and base.ok else None
        records.append({"seed": seed, "baseline": baseline, "curve": curve})
    return records


def mean_curve(records: list[dict]) -> tuple[float | None, list[tuple[int, float]]]:
    """The mean baseline and the mean value at each d over the given seed records."""
    baseline = _mean([r["baseline"] for r in records if r["baseline"] is not None])
    dims = sorted({d for r in records for d in r["curve"]})
    curve = [(d, _mean([r["curve"][d] for r in records if d in r["curve"]])) for d in dims]
    return baseline, [(d, v) for d, v in curve if v is not None]


def d_int(records: list[dict], threshold: float, relative: bool) -> dict:
    """One definition's d_int90 on the mean curve, and its bootstrap interval over the seeds."""
    baseline, curve = mean_curve(records)
    if baseline is None and relative:
        return {"d": None, "interpolated": None, "target": None}
    target = threshold * baseline if relative else threshold
    first, interpolated = crossing(curve, target)
    return {"d": first, "interpolated": interpolated, "target": target}


def with_interval(records: list[dict], threshold: float, relative: bool, options) -> dict:
    """``d_int`` plus its percentile bootstrap interval over the seeds.

    A resample whose mean curve never reaches the target counts as "beyond the largest d tried"
    (``NOT_REACHED``), so ``hi`` is None (unbounded) when more than the interval's tail misses it.
    """
    found = d_int(records, threshold, relative)

    def statistic(sample: list[dict]) -> float:
        value = d_int(sample, threshold, relative).get("interpolated")
        return NOT_REACHED if value is None else value

    usable = [r for r in records if r["curve"] and (r["baseline"] is not None or not relative)]
    lo, hi = bootstrap_ci(usable, statistic, level=options.level, n=options.bootstrap, seed=0)
    if lo is not None and lo >= NOT_REACHED:
        lo = hi = None
        bounded = False
    else:
        bounded = hi is not None and hi < NOT_REACHED
    tried = max((d for r in records for d in r["curve"]), default=None)
    return {
        **found,
        "lo": lo,
        "hi": hi if bounded else None,
        "unbounded": lo is not None and not bounded,
        "tried": tried,
    }


def _fmt_d(value) -> str | None:
    return None if value is None else f"{value:,.0f}"


def _interval(found: dict) -> str | None:
    if found.get("lo") is None:
        return None
    if found.get("unbounded"):
        return f"[{found['lo']:,.0f}, > {found['tried']:,}]"
    return f"[{found['lo']:,.0f}, {found['hi']:,.0f}]"


def model_summary(model: str, size: int | None, options, results: Mapping[str, TrialResult]) -> dict:
    """Everything the report says of one model."""
    records = seed_records(model, options, results)
    baselines = [r["baseline"] for r in records if r["baseline"] is not None]
    base_mean, base_lo, base_hi = mean_ci(baselines, options.level)
    points = []
    for d in sorted({d for r in records for d in r["curve"]}):
        values = [r["curve"][d] for r in records if d in r["curve"]]
        mean, lo, hi = mean_ci(values, options.level)
        share = mean / base_mean if base_mean else None
        points.append({"d": d, "mean": mean, "lo": lo, "hi": hi, "of_baseline": share, "n": len(values)})
    return {
        "model": model,
        "parameters": size,
        "baseline": {"mean": base_mean, "lo": base_lo, "hi": base_hi, "n": len(baselines)},
        "points": points,
        "relative": with_interval(records, options.threshold, True, options),
        "absolute": with_interval(records, options.threshold, False, options),
    }


def _row(summary: dict, results: Mapping[str, TrialResult]) -> dict:
    model = summary["model"]
    rel, ab = summary["relative"], summary["absolute"]
    best = max((p["mean"] for p in summary["points"]), default=None)
    mine = [r for k, r in results.items() if k.startswith(f"{model}/")]
    return {
        "model": model,
        "D": summary["parameters"],
        "baseline": summary["baseline"]["mean"],
        "d_int90 (90% of baseline)": rel.get("d"),
        "interpolated": _fmt_d(rel.get("interpolated")),
        "interval": _interval(rel),
        "d_int90 (90% absolute)": ab.get("d"),
        "interpolated (abs)": _fmt_d(ab.get("interpolated")),
        "interval (abs)": _interval(ab),
        "best subspace": best,
        "trials": f"{sum(r.ok for r in mine)}/{len(mine)} completed",
    }


def _plot(summaries: list[dict], threshold: float) -> Plot:
    series = [
        {
            "label": s["model"],
            "x": [p["d"] for p in s["points"]],
            "y": [p["mean"] for p in s["points"]],
            "lo": [p["lo"] if p["lo"] is not None else p["mean"] for p in s["points"]],
            "hi": [p["hi"] if p["hi"] is not None else p["mean"] for p in s["points"]],
        }
        for s in summaries
    ]
    hlines = [{"y": threshold, "label": f"{threshold:.0%} absolute"}]
    for s in summaries:
        if s["baseline"]["mean"] is not None:
            hlines.append(
                {"y": threshold * s["baseline"]["mean"], "label": f"{threshold:.0%} of {s['model']} baseline"}
            )
    return Plot(
        name="accuracy_vs_d",
        title="accuracy vs subspace dimension d",
        x_label="d (trained directions)",
        y_label="accuracy (mean over seeds)",
        series=series,
        hlines=hlines,
        log_x=True,
    )


def _findings(summaries: list[dict], options) -> list[str]:
    lines = []
    for s in summaries:
        rel, ab, base = s["relative"], s["absolute"], s["baseline"]
        if base["mean"] is None:
            lines.append(f"{s['model']}: no baseline completed, so the relative d_int90 is unknown")
            continue
        head = (
            f"{s['model']} (D = {s['parameters']:,}): baseline {options.metric} {base['mean']:.3f}"
            if s["parameters"]
            else f"{s['model']}: baseline {options.metric} {base['mean']:.3f}"
        )
        for label, found in (("90% of baseline", rel), ("90% absolute", ab)):
            if found.get("d") is None:
                tried = max((p["d"] for p in s["points"]), default=None)
                head += f"; {label}: not reached up to d = {tried:,}"
            else:
                interval = _interval(found)
                head += f"; d_int90 ({label}) = {found['d']:,} (interpolated {found['interpolated']:,.0f}"
                head += f", {options.level:.0%} bootstrap interval {interval})" if interval else ")"
        lines.append(head)
    lines += _comparison(summaries)
    return lines


def _comparison(summaries: list[dict]) -> list[str]:
    """The paper's finding in words: which model needs the larger d_int90 (relative definition)."""
    known = [s for s in summaries if s["relative"].get("interpolated") is not None]
    beyond = [s for s in summaries if s["relative"].get("d") is None and s["relative"].get("tried") and known]
    lines = [
        f"{s['model']} does not reach 90% of its baseline by the largest d tried ({s['relative']['tried']:,}): "
        f"its d_int90 is above that, larger than {', '.join(k['model'] for k in known)}'s "
        f"({', '.join(format(k['relative']['interpolated'], ',.0f') for k in known)}); add larger dims to place it"
        for s in beyond
        if all(s["relative"]["tried"] > k["relative"]["interpolated"] for k in known)
    ]
    if len(known) < 2:
        return lines
    ranked = sorted(known, key=lambda s: s["relative"]["interpolated"], reverse=True)
    top, low = ranked[0], ranked[-1]
    text = (
        f"{top['model']} needs the largest d_int90 ({top['relative']['interpolated']:,.0f}) and {low['model']} the "
        f"smallest ({low['relative']['interpolated']:,.0f}), {top['relative']['interpolated'] / low['relative']['interpolated']:.1f}x"
    )
    separated = top["relative"].get("lo") is not None and low["relative"].get("hi") is not None
    if separated and top["relative"]["lo"] > low["relative"]["hi"]:
        text += "; the bootstrap intervals do not overlap"
    elif separated:
        text += "; the bootstrap intervals overlap, so the order is not established by these seeds"
    return [*lines, text + " (paper, full MNIST: FC 750 vs LeNet 290, 2.6x)"]


def build_report(base: dict, options, results: Mapping[str, TrialResult], sizes: dict) -> Report:
    """The report of an intrinsic-dimension experiment."""
    for name in sizes:  # the trials' own parameter counts win over the config-time estimate
        counted = [r.metric("parameters") for k, r in results.items() if k.startswith(f"{name}/") and r.ok]
        if counted:
            sizes[name] = int(counted[0])
    summaries = [model_summary(name, size, options, results) for name, size in sizes.items()]
    return Report(
        title=f"Intrinsic dimension of {', '.join(sizes)} ({options.projection} projection, "
        f"{len(options.seeds)} seed(s))",
        columns=COLUMNS,
        rows=[_row(s, results) for s in summaries],
        findings=_findings(summaries, options),
        plots=[_plot(summaries, options.threshold)],
        reference=REFERENCE,
        extra={"models": summaries, "metric": options.metric, "threshold": options.threshold},
    )
