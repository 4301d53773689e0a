"""Writes on the journal: user entries, and the entry written when a run finishes."""

from __future__ import annotations

from django.db import transaction

from layerlab.apps.journal.models import Entry
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run
from layerlab.core.errors import LayerlabError


class JournalError(LayerlabError):
    kind = "journal_error"


def percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "n/a"


def run_entry_text(run: Run) -> tuple[str, str]:
    """Title and markdown body describing a finished run: what was trained, the figures, the verdict."""
    config = run.config or {}
    model = config.get("model", {})
    what = model.get("preset") or f"{len(model.get('layers') or [])} layers"
    data = config.get("data", {}).get("source", "?")
    title = f"Run {run.id} {run.status}: {what} on {data}"
    lines = [
        f"**{run.name or f'Run {run.id}'}** ({run.status}), {run.epoch} of {run.epochs} epochs.",
        "",
        f"- model: {what}; data: {data}; optimizer {config.get('train', {}).get('optimizer', '?')}, "
        f"lr {config.get('train', {}).get('lr', '?')}",
    ]
    summary = run.summary or {}
    if summary:
        lines.append(
            f"- train {percent(summary.get('train_accuracy'))}, validation {percent(summary.get('val_accuracy'))}, "
            f"test {percent(summary.get('test_accuracy'))}"
        )
    if run.verdict:
        lines.append(f"- verdict: {run.verdict}")
    if run.error:
        lines.append(f"- error: {run.error}")
    if run.parent_id:
        lines.append(f"- fine-tuned from run {run.parent_id}")
    return title, "\n".join(lines)


@transaction.atomic
def entry_for_finished_run(run: Run) -> Entry:
    """Write (or refresh) the automatic entry of a finished run."""
    title, body = run_entry_text(run)
    entry = Entry.objects.filter(run=run, automatic=True).first()
    if entry is None:
        return Entry.objects.create(project=run.project, run=run, title=title, body=body, automatic=True)
    entry.title, entry.body = title, body
    entry.save(update_fields=["title", "body", "updated_at"])
    return entry


@transaction.atomic
def entry_create(
    *, project: Project, author, title: str, body: str = "", run: Run | None = None, date=None
) -> Entry:
    if run is not None and run.project_id != project.id:
        raise JournalError(f"run {run.id} belongs to another project", where="run")
    fields = {"date": date} if date else {}
    return Entry.objects.create(project=project, author=author, title=title, body=body, run=run, **fields)


@transaction.atomic
def entry_update(*, entry: Entry, **changes) -> Entry:
    """Edit title, body, date, or the linked run (``run=None`` leaves it; unlinking is not offered)."""
    run = changes.get("run")
    if run is not None:
        if run.project_id != entry.project_id:
            raise JournalError(f"run {run.id} belongs to another project", where="run")
        entry.run = run
    for key in ("title", "body", "date"):
        if changes.get(key) is not None:
            setattr(entry, key, changes[key])
    entry.save()
    return entry
