"""The lab journal: entries as a dated timeline, written and edited in markdown."""

from __future__ import annotations

from itertools import groupby

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from layerlab.apps.journal import services
from layerlab.apps.journal.selectors import entry_list_visible
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.selectors import project_list_visible
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.errors import LayerlabError
from layerlab.web.access import page, projects_with_role, require_role, visible_or_404
from layerlab.web.forms import EntryForm

PAGE_SIZE = 30


@page
def journal(request):
    """Entries newest first, grouped by date; ``?project=<id>`` narrows to one project."""
    entries = entry_list_visible(user=request.user)
    project = request.GET.get("project", "")
    if project.isdigit():
        entries = entries.filter(project_id=int(project))
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
            "project": int(project) if project.isdigit() else None,
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


@page
def entry_new(request):
    projects = projects_with_role(request.user, Role.EDITOR)
    initial = {
        "date": timezone.localdate(),
        "project": request.GET.get("project"),
        "run": request.GET.get("run"),
    }
    form = EntryForm(request.POST or None, projects=projects, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            require_role(request.user, data["project"], Role.EDITOR)
            entry = services.entry_create(
                project=data["project"],
                author=request.user,
                title=data["title"],
                body=data["body"],
                run=entry_run(request.user, form),
                date=data["date"],
            )
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Entry '{entry.title}' saved.")
            return redirect(f"{reverse('web:journal')}#entry-{entry.id}")
    return render(request, "web/entry_form.html", {"form": form, "entry": None, "projects": projects})


@page
def entry_edit(request, entry_id: int):
    entry = visible_or_404(entry_list_visible(user=request.user), entry_id)
    require_role(request.user, entry.project, Role.EDITOR)
    projects = [entry.project]
    initial = {
        "project": entry.project_id, "title": entry.title, "date": entry.date, "run": entry.run_id, "body": entry.body,
    }  # fmt: skip
    form = EntryForm(request.POST or None, projects=projects, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            run = entry_run(request.user, form)
            if run is not None and run.project_id != entry.project_id:
                raise LayerlabError(f"run {run.id} belongs to another project", where="run")
            entry.run = run
            services.entry_update(entry=entry, title=data["title"], body=data["body"], date=data["date"])
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Entry '{entry.title}' saved.")
            return redirect(f"{reverse('web:journal')}#entry-{entry.id}")
    return render(request, "web/entry_form.html", {"form": form, "entry": entry, "projects": projects})
