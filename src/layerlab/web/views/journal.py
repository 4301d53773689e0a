"""The lab journal: entries as a dated timeline, written and edited in markdown."""

from __future__ import annotations

from itertools import groupby

from django.contrib import messages
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from layerlab.apps.journal import services
from layerlab.apps.journal.selectors import entry_image_list_visible, entry_list_visible
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.selectors import project_list_visible
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.errors import LayerlabError
from layerlab.core.ids import id_param
from layerlab.web.access import page, projects_with_role, require_role, visible_or_404
from layerlab.web.forms import EntryForm
from layerlab.web.markdown import render_markdown

PAGE_SIZE = 30
MAX_PREVIEW_CHARS = 200_000


@page
def journal(request):
    """Entries newest first, grouped by date; ``?project=<id>`` narrows to one project."""
    entries = entry_list_visible(user=request.user)
    project = id_param(request.GET, "project")
    if project is not None:
        entries = entries.filter(project_id=project)
    page_obj = Paginator(entries, PAGE_SIZE).get_page(request.GET.get("page"))
    days = [(day, list(items)) for day, items in groupby(page_obj, key=lambda e: e.date)]
    editable = {p.id for p in projects_with_role(request.user, Role.EDITOR)}
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "web/journal.html",
        {
            "days": days,
            "page_obj": page_obj,
            "editable": editable,
            "projects": project_list_visible(user=request.user).only("id", "name"),
            "project": project,
            "keep": params.urlencode(),
        },
    )


def entry_run(user, form: EntryForm):
    """The run an entry is about, if the user may see it (else a form error, as if it did not exist)."""
    run_id = form.cleaned_data.get("run")
    if not run_id:
        return None
    run = run_list_visible(user=user).filter(id=run_id).first()
    if run is None:
        raise LayerlabError(f"run {run_id} not found", where="run")
    return run


def entry_body(request, form: EntryForm, project) -> str:
    """The entry's text, with the markdown of an image uploaded with the form added at its end.

    The image is kept at once (also for a preview), so the text that refers to it survives re-rendering.
    """
    body = form.cleaned_data["body"]
    upload = form.cleaned_data.get("image")
    if upload:
        image = services.entry_image_add(project=project, user=request.user, upload=upload)
        markdown = services.entry_image_markdown(image)
        body = f"{body.rstrip()}\n\n{markdown}\n" if body.strip() else f"{markdown}\n"
        form.data = form.data.copy()
        form.data["body"] = body
    return body


def entry_page(request, form, entry, projects, preview=None):
    return render(
        request,
        "web/entry_form.html",
        {"form": form, "entry": entry, "projects": projects, "preview": preview},
    )


@page
def entry_new(request):
    projects = projects_with_role(request.user, Role.EDITOR)
    initial = {
        "date": timezone.localdate(),
        "project": request.GET.get("project"),
        "run": request.GET.get("run"),
    }
    form = EntryForm(request.POST or None, request.FILES or None, projects=projects, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            require_role(request.user, data["project"], Role.EDITOR)
            body = entry_body(request, form, data["project"])
            if "preview" in request.POST:
                return entry_page(request, form, None, projects, preview=render_markdown(body))
            entry = services.entry_create(
                project=data["project"],
                author=request.user,
                title=data["title"],
                body=body,
                run=entry_run(request.user, form),
                date=data["date"],
            )
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Entry '{entry.title}' saved.")
            return redirect(f"{reverse('web:journal')}#entry-{entry.id}")
    return entry_page(request, form, None, projects)


@page
def entry_edit(request, entry_id: int):
    entry = visible_or_404(entry_list_visible(user=request.user), entry_id)
    require_role(request.user, entry.project, Role.EDITOR)
    projects = [entry.project]
    initial = {
        "project": entry.project_id, "title": entry.title, "date": entry.date, "run": entry.run_id, "body": entry.body,
    }  # fmt: skip
    form = EntryForm(request.POST or None, request.FILES or None, projects=projects, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = entry_run(request.user, form)
            if run is not None and run.project_id != entry.project_id:
                raise LayerlabError(f"run {run.id} belongs to another project", where="run")
            body = entry_body(request, form, entry.project)
            if "preview" in request.POST:
                return entry_page(request, form, entry, projects, preview=render_markdown(body))
            entry.run = run
            services.entry_update(entry=entry, title=data["title"], body=body, date=data["date"])
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Entry '{entry.title}' saved.")
            return redirect(f"{reverse('web:journal')}#entry-{entry.id}")
    return entry_page(request, form, entry, projects)


@page
@require_POST
def entry_preview(request):
    """``{"html": ...}``: the sanitized rendering of a markdown text (the entry form's live preview)."""
    text = request.POST.get("body", "")
    if len(text) > MAX_PREVIEW_CHARS:
        return JsonResponse({"html": "", "error": "the text is too long to preview"}, status=400)
    return JsonResponse({"html": str(render_markdown(text))})


@page
def entry_image(request, image_id: int):
    """A journal image, for people who may see its project (404 for everyone else, and for a lost file)."""
    image = visible_or_404(entry_image_list_visible(user=request.user), image_id)
    try:
        handle = default_storage.open(image.file.name, "rb")
    except (FileNotFoundError, OSError):
        raise Http404("not found") from None
    response = FileResponse(handle, content_type=image.content_type)
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
