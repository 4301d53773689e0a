"""The new-run page: project, dataset, preset or spec, with the shape table checked as you type."""

from __future__ import annotations

import json

from django.contrib import messages
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.networks import services as network_services
from layerlab.apps.projects.models import Role
from layerlab.apps.runs import services
from layerlab.core.errors import LayerlabError
from layerlab.web import shapecheck
from layerlab.web.access import page, projects_with_role, require_role
from layerlab.web.forms import NewRunForm

MAX_CHECK_BODY = 200_000


def dataset_choices(user, projects) -> list[tuple[str, str]]:
    choices = [(f"builtin:{name}", f"{name} (built-in)") for name in shapecheck.BUILTIN]
    ids = [p.id for p in projects]
    for dataset in dataset_list_visible(user=user).filter(project_id__in=ids):
        choices.append((f"dataset:{dataset.id}", f"{dataset.name} ({dataset.project.name})"))
    return choices


@page
def run_new(request):
    """GET the form; POST checks it and queues the run through ``runs.services.run_create``."""
    projects = projects_with_role(request.user, Role.EDITOR)
    form = NewRunForm(request.POST or None, projects=projects, initial={"preset": "mlp"})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            require_role(request.user, data["project"], Role.EDITOR)
            section, dataset = shapecheck.data_choice(user=request.user, value=data["dataset"])
            config = {
                "data": section,
                "model": shapecheck.model_section(preset=data["preset"], spec=data["spec"]),
                "train": {"epochs": data["epochs"], "lr": data["lr"], "batch_size": data["batch_size"]},
            }
            run = services.run_create(
                project=data["project"],
                user=request.user,
                config=config,
                name=data["name"],
                dataset=dataset,
                overrides=data["overrides"],
            )
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Run {run.id} queued.")
            return redirect("web:run", run_id=run.id)
    return render(
        request,
        "web/run_new.html",
        {
            "form": form,
            "projects": projects,
            "datasets": dataset_choices(request.user, projects),
            "presets": network_services.preset_names(),
            "selected_dataset": form["dataset"].value() or "builtin:spiral",
        },
    )


@page
@require_POST
def shape_check(request):
    """JSON in (dataset, preset, spec text), JSON out: the shape table, or the engine's one-line error.

    A POST with the CSRF header (it reads files on the server), answering 200 either way so the page
    can show the message next to the spec.
    """
    if len(request.body) > MAX_CHECK_BODY:
        return JsonResponse({"ok": False, "error": "the spec is too large"}, status=400)
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("a JSON object")
    except ValueError as exc:
        return JsonResponse({"ok": False, "error": f"the request is not JSON: {exc}"}, status=400)
    form = NewRunForm(
        {"spec": body.get("spec", ""), "preset": body.get("preset", ""), "dataset": body.get("dataset", "")}
    )
    form.is_valid()  # only spec is read from the cleaned data
    if "spec" in form.errors:
        return JsonResponse({"ok": False, "error": "spec: " + " ".join(form.errors["spec"])})
    try:
        section, _ = shapecheck.data_choice(user=request.user, value=str(body.get("dataset", "")))
        model = shapecheck.model_section(
            preset=str(body.get("preset", "")), spec=form.cleaned_data.get("spec")
        )
        table = network_services.network_preview(data=section, model=model)
    except LayerlabError as exc:
        return JsonResponse({"ok": False, "error": exc.one_line()})
    return JsonResponse({"ok": True, **table})
