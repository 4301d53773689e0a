"""The run page's "What it learned" tab: the page itself; its pictures come from the runs API's inspect endpoints."""

from __future__ import annotations

from django.shortcuts import render

from layerlab.apps.runs.selectors import run_list_visible
from layerlab.web import rundetail
from layerlab.web.access import page, visible_or_404


@page
def run_learned(request, run_id: int):
    """Activation grids, filters, top-9, activation maximization and attributions for a chosen input.

    The page holds the pickers; ``learned.js`` asks ``/api/runs/<id>/inspect/`` (the user's session,
    the CSRF token for uploads) and shows the images of the index it answers.
    """
    run = visible_or_404(run_list_visible(user=request.user).prefetch_related("checkpoints"), run_id)
    return render(
        request,
        "web/run_learned.html",
        {
            "run": run,
            "has_weights": rundetail.has_weights(run) and run.is_finished,
            "api": f"/api/runs/{run.id}/inspect/",
        },
    )
