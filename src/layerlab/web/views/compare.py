"""Compare runs: overlaid curves, the config keys that differ, final figures side by side."""

from __future__ import annotations

from django.shortcuts import render

from layerlab.apps.runs.references import config_public
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.configtree import flatten
from layerlab.core.ids import id_list_param
from layerlab.web.access import page
from layerlab.web.rundetail import duration, percent

MAX_COMPARED = 8
FIGURES = [
    ("Status", lambda r: r.status),
    ("Train accuracy", lambda r: percent((r.summary or {}).get("train_accuracy"))),
    ("Validation accuracy", lambda r: percent((r.summary or {}).get("val_accuracy"))),
    ("Test accuracy", lambda r: percent((r.summary or {}).get("test_accuracy"))),
    ("Test loss", lambda r: fmt((r.summary or {}).get("test_loss"))),
    ("Epochs", lambda r: f"{r.epoch} of {r.epochs}"),
    ("Parameters", lambda r: fmt((r.summary or {}).get("parameters"))),
    ("Duration", duration),
    ("Verdict", lambda r: r.verdict),
]


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    return "\u2013" if value is None else str(value)


def config_differences(configs: list[dict]) -> list[tuple[str, list[str]]]:
    """The dotted keys whose values differ between the configs, with each config's value as text."""
    flats = [flatten(c) for c in configs]
    keys = sorted(set().union(*flats)) if flats else []
    missing = object()
    rows = []
    for key in keys:
        values = [flat.get(key, missing) for flat in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, ["\u2013" if v is missing else fmt(v) for v in values]))
    return rows


@page
def compare(request):
    """``?runs=1&runs=2``: the visible ones among them (others are ignored as if they did not exist)."""
    wanted = id_list_param(request.GET, "runs", MAX_COMPARED)
    visible = run_list_visible(user=request.user)
    by_id = {run.id: run for run in visible.filter(id__in=wanted)}
    runs = [by_id[i] for i in dict.fromkeys(wanted) if i in by_id]
    context = {"runs": runs, "max": MAX_COMPARED}
    if runs:
        context["figures"] = [(label, [get(run) for run in runs]) for label, get in FIGURES]
        context["differences"] = config_differences([config_public(run) for run in runs])
        context["chart_runs"] = [{"id": run.id, "label": f"run {run.id} {run.name}".strip()} for run in runs]
    else:
        context["recent"] = visible.defer("config", "summary")[:30]
    return render(request, "web/compare.html", context)
