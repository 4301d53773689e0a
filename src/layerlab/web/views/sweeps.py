"""Sweeps: the list, and one sweep's page (trials table, best-so-far, parallel coordinates, importances)."""

from __future__ import annotations

from django.shortcuts import render

from layerlab.apps.sweeps.selectors import sweep_best, sweep_counts, sweep_list_visible
from layerlab.apps.sweeps.services import sweep_reconcile
from layerlab.web.access import page, visible_or_404

BADGE = {"running": "running", "finished": "succeeded", "cancelled": "cancelled"}


@page
def sweeps_list(request):
    sweeps = sweep_list_visible(user=request.user)
    project = request.GET.get("project")
    if project and project.isdigit():
        sweeps = sweeps.filter(project_id=int(project))
    sweeps = list(sweeps[:500])
    for sweep in sweeps:
        sweep.badge = BADGE.get(sweep.status, "queued")
    return render(request, "web/sweeps.html", {"sweeps": sweeps})


@page
def sweep_detail(request, sweep_id: int):
    sweep = visible_or_404(sweep_list_visible(user=request.user), sweep_id)
    if sweep.status == "running":  # tells what a killed worker left untold (as the API's detail does)
        sweep_reconcile(sweep=sweep)
        sweep.refresh_from_db()
    context = {
        "sweep": sweep,
        "badge": BADGE.get(sweep.status, "queued"),
        "counts": sweep_counts(sweep=sweep),
        "best": sweep_best(sweep=sweep),
        "meta": {"id": sweep.id, "goal": sweep.goal, "metric": sweep.metric, "status": sweep.status},
    }
    return render(request, "web/sweep_detail.html", context)
