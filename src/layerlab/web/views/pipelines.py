"""Pipelines: the list, and one pipeline with each stage's state, inputs and links to its runs."""

from __future__ import annotations

from django.shortcuts import render

from layerlab.apps.pipelines.selectors import pipeline_list_visible
from layerlab.web.access import page, visible_or_404

# a state's colour, as the runs' badges have them
BADGE = {
    "done": "succeeded",
    "skipped": "succeeded",
    "failed": "failed",
    "running": "running",
    "not_run": "cancelled",
}


@page
def pipelines_list(request):
    pipelines = list(pipeline_list_visible(user=request.user).prefetch_related("stages")[:500])
    for pipeline in pipelines:
        pipeline.badge = BADGE.get(pipeline.state, "queued")
    return render(request, "web/pipelines.html", {"pipelines": pipelines})


def metrics_text(result: dict) -> str:
    """A stage's figures in a few words (``accuracy 0.93, loss 0.21``); its file or dataset otherwise."""
    metrics = (result or {}).get("metrics") or {}
    shown = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in list(metrics.items())[:4]]
    return ", ".join(shown) or (result or {}).get("file") or (result or {}).get("dataset_name") or ""


@page
def pipeline_detail(request, pipeline_id: int):
    pipelines = pipeline_list_visible(user=request.user).prefetch_related("stages__run")
    pipeline = visible_or_404(pipelines, pipeline_id)
    stages = [
        {
            "name": s.name,
            "kind": s.kind,
            "state": s.state,
            "badge": BADGE.get(s.state, "queued"),
            "identity": s.identity,
            "requires": s.requires,
            "run": s.run,
            "figures": metrics_text(s.result),
            "error": s.error,
        }
        for s in pipeline.stages.all()
    ]
    context = {"pipeline": pipeline, "badge": BADGE.get(pipeline.state, "queued"), "stages": stages}
    return render(request, "web/pipeline_detail.html", context)
