"""Experiments: the list with the new-experiment form (paste or upload a config), and one experiment's page
(results table, findings, the paper's table, PNG plots and interactive charts, trial links)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from layerlab.apps.experiments import services
from layerlab.apps.experiments.selectors import experiment_counts, experiment_list_visible, experiment_trials
from layerlab.apps.projects.models import Role
from layerlab.core.errors import LayerlabError
from layerlab.web.access import page, projects_with_role, report_errors, require_role, visible_or_404
from layerlab.web.forms import ExperimentForm

BADGE = {"running": "running", "finished": "succeeded", "cancelled": "cancelled", "failed": "failed"}


def experiment_for(request, experiment_id: int, role=None):
    """The experiment if the user may see it (else 404) and, with ``role``, act on it (else 403)."""
    experiment = visible_or_404(experiment_list_visible(user=request.user), experiment_id)
    if role is not None:
        require_role(request.user, experiment.project, role)
    return experiment


@page
def experiments_list(request):
    projects = projects_with_role(request.user, Role.EDITOR)
    form = ExperimentForm(request.POST or None, request.FILES or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            require_role(request.user, data["project"], Role.EDITOR)
            experiment = services.experiment_create(
                project=data["project"],
                user=request.user,
                config=data["config_text"],
                name=data["name"],
                overrides=data["overrides"],
            )
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Experiment '{experiment.name}' created: its trials are queued.")
            return redirect("web:experiment", experiment_id=experiment.id)
    experiments = experiment_list_visible(user=request.user)
    project = request.GET.get("project")
    if project and project.isdigit():
        experiments = experiments.filter(project_id=int(project))
    experiments = list(experiments[:500])
    for experiment in experiments:
        experiment.badge = BADGE.get(experiment.status, "queued")
        experiment.counts = experiment_counts(experiment=experiment)
    return render(request, "web/experiments.html", {"experiments": experiments, "form": form})


@page
def experiment_detail(request, experiment_id: int):
    experiment = experiment_for(request, experiment_id)
    if experiment.is_running:  # records what a lost hook left behind (as the API's detail does)
        services.experiment_advance(experiment=experiment)
        experiment.refresh_from_db()
    report = experiment.report or {}
    role = require_role(request.user, experiment.project, Role.VIEWER)
    context = {
        "experiment": experiment,
        "badge": BADGE.get(experiment.status, "queued"),
        "counts": experiment_counts(experiment=experiment),
        "trials": experiment_trials(experiment=experiment),
        "report": report,
        "table": [[row.get(c) for c in report.get("columns", [])] for row in report.get("rows", [])],
        "reference": report.get("reference"),
        "reference_table": [
            [row.get(c) for c in (report.get("reference") or {}).get("columns", [])]
            for row in (report.get("reference") or {}).get("rows", [])
        ],
        "charts": services.experiment_charts(experiment=experiment) if report else [],
        "can_edit": role >= Role.EDITOR,
        "can_resume": services.experiment_resumable(experiment),
        "is_owner": role >= Role.OWNER,
    }
    return render(request, "web/experiment_detail.html", context)


@page
def experiment_plot(request, experiment_id: int, name: str):
    experiment = experiment_for(request, experiment_id)
    png = services.experiment_plot_png(experiment=experiment, name=name)
    if png is None:
        raise Http404("no such plot")
    return HttpResponse(png, content_type="image/png")


@page
@require_POST
@report_errors
def experiment_cancel(request, experiment_id: int):
    experiment = experiment_for(request, experiment_id, Role.EDITOR)
    services.experiment_cancel(experiment=experiment)
    messages.success(request, f"Experiment '{experiment.name}' cancelled.")
    return redirect("web:experiment", experiment_id=experiment.id)


@page
@require_POST
@report_errors
def experiment_resume(request, experiment_id: int):
    experiment = experiment_for(request, experiment_id, Role.EDITOR)
    services.experiment_resume(experiment=experiment)
    messages.success(request, f"Experiment '{experiment.name}' resumed: its unfinished trials are queued.")
    return redirect("web:experiment", experiment_id=experiment.id)


@page
@require_POST
@report_errors
def experiment_delete(request, experiment_id: int):
    experiment = experiment_for(request, experiment_id, Role.OWNER)
    services.experiment_delete(experiment=experiment)
    messages.success(request, f"Experiment '{experiment.name}' deleted; its trial runs stay.")
    return redirect("web:experiments")
