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
from layerlab.core.ids import id_param
from layerlab.web import rerun, shapecheck
from layerlab.web.access import page, projects_with_role, require_role
from layerlab.web.forms import NewRunForm

MAX_CHECK_BODY = 200_000


def dataset_choices(user, projects) -> list[tuple[str, str, int | None]]:
    """``(value, label, project id)`` for the picker; built-ins have no project (they fit every one)."""
    choices = [(f"builtin:{name}", f"{name} (built-in)", None) for name in shapecheck.BUILTIN]
    ids = [p.id for p in projects]
    for dataset in dataset_list_visible(user=user).filter(project_id__in=ids):
        choices.append(
            (f"dataset:{dataset.id}", f"{dataset.name} ({dataset.project.name})", dataset.project_id)
        )
    return choices


def form_initial(request, projects, datasets) -> dict:
    """Defaults of the form: ``?dataset=`` (the dataset page's "Train on this") and its project, or ``?project=``."""
    initial = {"preset": "mlp"}
    dataset = request.GET.get("dataset", "")
    project = {value: project for value, _, project in datasets}.get(dataset)
    if dataset in {value for value, _, _ in datasets}:
        initial["dataset"] = dataset
    if project is None:
        project = id_param(request.GET, "project")
    if project in {p.id for p in projects}:
        initial["project"] = project
    return initial


@page
def run_new(request):
    """GET the form; POST checks it and queues the run through ``runs.services.run_create``."""
    projects = projects_with_role(request.user, Role.EDITOR)
    datasets = dataset_choices(request.user, projects)
    # ``?from=<run id>`` fills the form from that run ("run again with a lower learning rate").
    initial = {
        **form_initial(request, projects, datasets),
        **rerun.initial_from_run(user=request.user, params=request.GET),
    }
    form = NewRunForm(request.POST or None, projects=projects, initial=initial)
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
                tags=data.get("tags") or (),
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
            "datasets": datasets,
            "presets": network_services.preset_names(),
            "selected_dataset": form["dataset"].value() or "builtin:spiral",
        },
    )


# Where the engine's error names a key the page has a field for.
FIELD_OF_KEY = {"train.epochs": "epochs", "train.lr": "lr", "train.batch_size": "batch_size"}
LIVE_FIELDS = ("epochs", "lr", "batch_size", "overrides")


def live_field_errors(form: NewRunForm, section: dict | None, model: dict | None) -> dict[str, str]:
    """``{field: message}`` for the numbers and the overrides, as the engine would judge them at submit.

    The form's own checks first; then the config without the overrides (a message for a key with a
    field goes there), then with them: what fails only then is the overrides' fault.
    """
    fields = {name: " ".join(form.errors[name]) for name in LIVE_FIELDS if name in form.errors}
    if fields:
        return fields
    data = form.cleaned_data
    config = {
        "data": section or {"source": "spiral"},
        "model": model or {"preset": "mlp"},
        "train": {"epochs": data["epochs"], "lr": data["lr"], "batch_size": data["batch_size"]},
    }
    try:
        services.config_check(config=config)
    except LayerlabError as exc:
        field = FIELD_OF_KEY.get(exc.where or "")
        return {field: exc.one_line()} if field else {}
    try:
        services.config_check(config=config, overrides=data["overrides"])
    except LayerlabError as exc:
        return {"overrides": exc.one_line()}
    return {}


@page
@require_POST
def shape_check(request):
    """JSON in (dataset, preset, spec text, and the numbers and overrides), JSON out: the shape table or
    the engine's one-line error, plus ``fields``: ``{field: message}`` for the fields that would be refused.

    A POST with the CSRF header (it reads files on the server), answering 200 either way so the page
    can show each message next to its field.
    """
    if len(request.body) > MAX_CHECK_BODY:
        return JsonResponse({"ok": False, "error": "the spec is too large", "fields": {}}, status=400)
    try:
        body = json.loads(request.body or b"{}")
        if not isinstance(body, dict):
            raise ValueError("a JSON object")
    except ValueError as exc:
        return JsonResponse(
            {"ok": False, "error": f"the request is not JSON: {exc}", "fields": {}}, status=400
        )
    defaults = services.config_defaults()
    form = NewRunForm(
        {
            "spec": body.get("spec", ""),
            "preset": body.get("preset", ""),
            "dataset": body.get("dataset", ""),
            "overrides": str(body.get("overrides", "")),
            **{name: body.get(name, defaults[name]) for name in ("epochs", "lr", "batch_size")},
        }
    )
    form.is_valid()  # spec, the numbers and the overrides are read from the cleaned data
    section = model = None
    result: dict
    if "spec" in form.errors:
        result = {"ok": False, "error": "spec: " + " ".join(form.errors["spec"])}
    else:
        try:
            section, _ = shapecheck.data_choice(user=request.user, value=str(body.get("dataset", "")))
            model = shapecheck.model_section(
                preset=str(body.get("preset", "")), spec=form.cleaned_data.get("spec")
            )
            result = {"ok": True, **network_services.network_preview(data=section, model=model)}
        except LayerlabError as exc:
            result = {"ok": False, "error": exc.one_line()}
    return JsonResponse({**result, "fields": live_field_errors(form, section, model)})
