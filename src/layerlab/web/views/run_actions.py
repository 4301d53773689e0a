"""Run actions from the run page (cancel, resume, fine-tune, delete) and checkpoint files."""

from __future__ import annotations

from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from layerlab.apps.projects.models import Role
from layerlab.apps.runs import services
from layerlab.apps.runs.files import checkpoint_response
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.web.access import page, report_errors, require_role, visible_or_404
from layerlab.web.forms import ExportForm, FinetuneForm, RenameForm, TagsForm
from layerlab.web.rundetail import has_weights


def run_for(request, run_id: int, role: Role):
    run = visible_or_404(run_list_visible(user=request.user), run_id)
    require_role(request.user, run.project, role)
    return run


@page
@require_POST
@report_errors
def run_cancel(request, run_id: int):
    run = services.run_cancel(run=run_for(request, run_id, Role.EDITOR))
    messages.success(request, f"Run {run.id}: cancel requested ({run.status}).")
    return redirect("web:run", run_id=run.id)


@page
@require_POST
@report_errors
def run_resume(request, run_id: int):
    run = services.run_resume(run=run_for(request, run_id, Role.EDITOR))
    messages.success(request, f"Run {run.id} queued again; it continues from its last checkpoint.")
    return redirect("web:run", run_id=run.id)


@page
@require_POST
@report_errors
def run_finetune(request, run_id: int):
    parent = run_for(request, run_id, Role.EDITOR)
    form = FinetuneForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors_line())
        return redirect("web:run", run_id=parent.id)
    child = services.run_finetune(
        run=parent,
        user=request.user,
        overrides=form.cleaned_data["overrides"],
        name=form.cleaned_data["name"],
    )
    messages.success(request, f"Run {child.id} fine-tunes run {parent.id}.")
    return redirect("web:run", run_id=child.id)


@page
@require_POST
@report_errors
def run_rename(request, run_id: int):
    """The run page's inline name editor (editors and owners)."""
    run = run_for(request, run_id, Role.EDITOR)
    form = RenameForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors_line())
        return redirect("web:run", run_id=run.id)
    services.run_rename(run=run, name=form.cleaned_data["name"])
    messages.success(request, f"Run {run.id} renamed.")
    return redirect("web:run", run_id=run.id)


@page
@require_POST
@report_errors
def run_tags(request, run_id: int):
    """The run page's tag editor: the whole list, comma-separated (editors and owners)."""
    run = run_for(request, run_id, Role.EDITOR)
    form = TagsForm(request.POST)
    if not form.is_valid():
        messages.error(request, form.errors_line())
        return redirect("web:run", run_id=run.id)
    tags = services.run_tags_set(run=run, tags=form.cleaned_data["tags"])
    messages.success(request, f"Run {run.id} tags: {', '.join(tags) or 'none'}.")
    return redirect("web:run", run_id=run.id)


@page
@require_POST
@report_errors
def run_delete(request, run_id: int):
    run = run_for(request, run_id, Role.OWNER)
    services.run_delete(run=run)
    messages.success(request, f"Run {run_id} deleted.")
    return redirect("web:runs")


@page
def checkpoint_download(request, run_id: int, checkpoint_id: int):
    """The checkpoint file (local working copy, else the storage), for anyone who may see the run."""
    run = run_for(request, run_id, Role.VIEWER)
    checkpoint = run.checkpoints.filter(id=checkpoint_id).first()
    if checkpoint is None:
        raise Http404("no such checkpoint")
    return checkpoint_response(run, checkpoint)


@page
@require_POST
@report_errors
def run_export(request, run_id: int):
    """Export the best weights (safetensors, TorchScript or ONNX), checked against the eager model."""
    run = run_for(request, run_id, Role.EDITOR)  # it writes into the run directory
    form = ExportForm(request.POST)
    if not form.is_valid() or not has_weights(run):
        messages.error(request, "choose safetensors, torchscript or onnx for a run with a checkpoint")
        return redirect("web:run", run_id=run.id)
    fmt = form.cleaned_data["format"]
    path = services.run_export(run=run, fmt=fmt)
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"run{run.id}{path.suffix}")  # noqa: SIM115
