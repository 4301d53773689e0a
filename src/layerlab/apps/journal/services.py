"""Writes on the journal: user entries, the entry written when a run finishes, and entry images."""

from __future__ import annotations

import uuid

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from layerlab.apps.journal.models import Entry, EntryImage
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.selectors import run_metric_names
from layerlab.core.errors import LayerlabError


class JournalError(LayerlabError):
    kind = "journal_error"


def percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "n/a"


def number_text(key: str, value) -> str:
    """A summary value in words: accuracies as percentages, other numbers with 4 significant digits."""
    if "acc" in key and isinstance(value, int | float) and 0 <= value <= 1:
        return percent(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def logged_run_entry_text(run: Run) -> tuple[str, str]:
    """Title and body for a run a script logged through the API: the lab knows its series and summary,
    not its network, data or epochs."""
    names = run_metric_names(run=run)
    label = run.name or f"Run {run.id}"
    title = f"Run {run.id} {run.status}: {run.name or 'logged from a script'}"
    lines = [
        f"**{label}** ({run.status}), logged from a script through the API.",
        "",
        f"- series: {', '.join(names)}" if names else "- no metrics were logged",
    ]
    summary = run.summary or {}
    figures = [
        f"{key} {number_text(key, value)}"
        for key, value in summary.items()
        if isinstance(value, int | float | str) and not isinstance(value, bool) and key != "verdict"
    ]
    if figures:
        lines.append(f"- summary: {'; '.join(figures[:12])}")
    if run.verdict:
        lines.append(f"- verdict: {run.verdict}")
    if run.error:
        lines.append(f"- error: {run.error}")
    return title, "\n".join(lines)


def run_entry_text(run: Run) -> tuple[str, str]:
    """Title and markdown body describing a finished run: what was trained, the figures, the verdict."""
    if run.origin == Run.Origin.CLIENT:
        return logged_run_entry_text(run)
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


# Images: raster formats a browser shows, decoded by Pillow (SVG is a document with scripts: refused).
IMAGE_FORMATS = {"PNG": ("image/png", "png"), "JPEG": ("image/jpeg", "jpg"), "GIF": ("image/gif", "gif"),
                 "WEBP": ("image/webp", "webp")}  # fmt: skip
IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAX_PIXELS = 25_000_000  # 5000 x 5000; a decompression bomb is refused before it is decoded


def image_too_large(size: int, name: str) -> JournalError:
    return JournalError(
        f"'{name}' is {size // 1024} KiB; images may be {IMAGE_MAX_BYTES // (1024 * 1024)} MiB at most",
        hint="scale it down or save it as JPEG",
        where="image",
    )


def image_check(data: bytes, name: str) -> tuple[str, int, int]:
    """``(format, width, height)`` of an upload that is a real PNG, JPEG, GIF or WebP within the caps."""
    from io import BytesIO

    from PIL import Image

    if len(data) > IMAGE_MAX_BYTES:
        raise image_too_large(len(data), name)
    refused = JournalError(f"'{name}' is not a PNG, JPEG, GIF or WebP image", where="image")
    try:
        with Image.open(BytesIO(data)) as image:  # reads the header only
            fmt, (width, height) = image.format, image.size
            if fmt not in IMAGE_FORMATS:
                raise refused
            if width * height > IMAGE_MAX_PIXELS:
                raise JournalError(
                    f"'{name}' is {width}x{height} pixels; images may have {IMAGE_MAX_PIXELS:,} pixels at most",
                    hint="scale it down",
                    where="image",
                )
            image.verify()
        with Image.open(BytesIO(data)) as image:
            image.load()  # the whole picture decodes (a truncated file does not)
    except JournalError:
        raise
    except Exception:
        raise refused from None
    return fmt, width, height


@transaction.atomic
def entry_image_add(*, project: Project, user, upload) -> EntryImage:
    """Keep an uploaded picture for the project's journal, through the storage API, after checking it.

    Args:
        project: whose journal it belongs to (the caller checked the editor role); only people who may
            see this project can fetch it.
        upload: a Django UploadedFile.
    """
    name = (getattr(upload, "name", "") or "image")[-200:]
    if getattr(upload, "size", 0) > IMAGE_MAX_BYTES:
        raise image_too_large(upload.size, name)  # without reading it
    data = upload.read(IMAGE_MAX_BYTES + 1)
    fmt, width, height = image_check(data, name)
    content_type, ext = IMAGE_FORMATS[fmt]
    stored = default_storage.save(f"journal/{project.id}/{uuid.uuid4().hex}.{ext}", ContentFile(data))
    try:
        return EntryImage.objects.create(
            project=project, file=stored, name=name, content_type=content_type, width=width, height=height,
            size=len(data), uploaded_by=user,
        )  # fmt: skip
    except BaseException:
        default_storage.delete(stored)
        raise


def entry_image_markdown(image: EntryImage) -> str:
    """The markdown that shows the image: ``![name](/journal/images/<id>/)``."""
    alt = image.name.rsplit(".", 1)[0].replace("[", "").replace("]", "") or "image"
    return f"![{alt}](/journal/images/{image.id}/)"
