"""A report's plots: PNG images through matplotlib (Agg, no display) and the same plot as a Chart.js config.

One ``Plot`` (research/base.py) gives both: ``render_png`` for report.md, the lab's storage and the
dashboard's images; ``chart_config`` for the dashboard's interactive chart. Series may carry
``lo``/``hi`` (an interval): a shaded band on a line, error bars on bars and points.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

from layerlab.research.base import Plot

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _num(value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number if math.isfinite(number) else math.nan


def _is_numeric(xs) -> bool:
    return all(isinstance(x, int | float) and not isinstance(x, bool) for x in xs)


def render_png_bytes(plot: Plot, *, dpi: int = 110) -> bytes:
    """The plot as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), dpi=dpi)
    axes = figure.add_subplot(1, 1, 1)
    categories = _categories(plot)
    for i, series in enumerate(plot.series):
        _draw(axes, plot, series, i, len(plot.series), categories)
    for line in plot.hlines:
        if line.get("y") is not None:
            axes.axhline(
                _num(line["y"]), linestyle="--", color="#555555", linewidth=1, label=line.get("label")
            )
    if categories is not None:
        axes.set_xticks(
            range(len(categories)), [str(c) for c in categories], rotation=30 if len(categories) > 6 else 0
        )
    elif plot.log_x:
        axes.set_xscale("log")
    axes.set_title(plot.title)
    axes.set_xlabel(plot.x_label)
    axes.set_ylabel(plot.y_label)
    axes.grid(True, alpha=0.3)
    if any(s.get("label") for s in plot.series) or plot.hlines:
        axes.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _categories(plot: Plot) -> list | None:
    """The x categories of a bar plot (or of any plot whose x values are not all numbers)."""
    xs = [x for s in plot.series for x in s.get("x", [])]
    if plot.kind != "bar" and _is_numeric(xs):
        return None
    seen: list = []
    for x in xs:
        if x not in seen:
            seen.append(x)
    return seen


def _draw(axes, plot: Plot, series: dict, index: int, count: int, categories: list | None) -> None:
    color = PALETTE[index % len(PALETTE)]
    y = [_num(v) for v in series.get("y", [])]
    lo, hi = series.get("lo"), series.get("hi")
    has_band = lo is not None and hi is not None and len(lo) == len(y) == len(hi)
    if categories is not None:
        width = 0.8 / max(1, count)
        x = [categories.index(v) - 0.4 + width * (index + 0.5) for v in series.get("x", [])]
    else:
        x = [_num(v) for v in series.get("x", [])]
    err = None
    if has_band:
        err = [
            [max(0.0, yy - _num(a)) if not math.isnan(_num(a)) else 0.0 for yy, a in zip(y, lo, strict=True)],
            [max(0.0, _num(b) - yy) if not math.isnan(_num(b)) else 0.0 for yy, b in zip(y, hi, strict=True)],
        ]
    label = series.get("label")
    if plot.kind == "bar":
        axes.bar(x, y, width=0.8 / max(1, count), color=color, label=label, yerr=err, capsize=3)
    elif plot.kind == "scatter":
        axes.errorbar(x, y, yerr=err, fmt="o", color=color, label=label, capsize=3)
    else:
        axes.plot(x, y, marker="o", markersize=3, color=color, label=label)
        if has_band:
            axes.fill_between(x, [_num(v) for v in lo], [_num(v) for v in hi], color=color, alpha=0.2)


def render_png(plot: Plot, path: str | Path) -> Path:
    """Write the plot as a PNG file (folder created); its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".png.tmp")
    tmp.write_bytes(render_png_bytes(plot))
    tmp.replace(path)
    return path


def _json_num(value):
    number = _num(value)
    return None if math.isnan(number) else number


def chart_config(plot: Plot | dict) -> dict:
    """A Chart.js config for the plot (the dashboard adds nothing but the canvas)."""
    data = plot.to_dict() if isinstance(plot, Plot) else dict(plot)
    kind = data.get("kind", "line")
    categories = None
    xs = [x for s in data["series"] for x in s.get("x", [])]
    if kind == "bar" or not _is_numeric(xs):
        categories = []
        for x in xs:
            if x not in categories:
                categories.append(x)
    datasets = []
    for i, series in enumerate(data["series"]):
        color = PALETTE[i % len(PALETTE)]
        if categories is not None:
            lookup = dict(zip(series.get("x", []), series.get("y", []), strict=False))
            points = [_json_num(lookup.get(c)) for c in categories]
        else:
            points = [
                {"x": _json_num(x), "y": _json_num(y)}
                for x, y in zip(series.get("x", []), series.get("y", []), strict=False)
            ]
        datasets.append(
            {
                "label": series.get("label") or data["y_label"],
                "data": points,
                "borderColor": color,
                "backgroundColor": color + ("99" if kind == "bar" else "cc"),
                "showLine": kind == "line",
                "lo": [_json_num(v) for v in series.get("lo") or []],
                "hi": [_json_num(v) for v in series.get("hi") or []],
            }
        )
    for line in data.get("hlines") or []:
        if line.get("y") is None:
            continue
        if categories is not None:
            points = [_json_num(line["y"]) for _ in categories]
        else:
            finite = [x for x in (_json_num(v) for v in xs) if x is not None]
            points = (
                [{"x": min(finite), "y": _json_num(line["y"])}, {"x": max(finite), "y": _json_num(line["y"])}]
                if finite
                else []
            )
        datasets.append(
            {
                "label": line.get("label") or "",
                "data": points,
                "type": "line",
                "borderColor": "#555555",
                "borderDash": [6, 4],
                "pointRadius": 0,
                "showLine": True,
                "fill": False,
            }
        )
    x_scale = {"title": {"display": True, "text": data["x_label"]}}
    if categories is None:
        x_scale["type"] = "logarithmic" if data.get("log_x") else "linear"
    chart_data: dict = {"datasets": datasets}
    if categories is not None:
        chart_data["labels"] = [str(c) for c in categories]
    return {
        "type": "bar" if kind == "bar" else ("scatter" if categories is None else "line"),
        "data": chart_data,
        "options": {
            "responsive": True,
            "animation": False,
            "plugins": {"title": {"display": True, "text": data["title"]}},
            "scales": {"x": x_scale, "y": {"title": {"display": True, "text": data["y_label"]}}},
        },
    }
