"""The runs list's rows: the detail's fields (or those ``?fields=`` names), built in a constant number of queries.

A page of runs is read as plain values (no model instances, no per-run prefetch querysets): the
page's rows in one query, then its tags, checkpoints and children in one query each. Only the
columns the requested fields need are read; the config and summary JSON only when asked for.
The few runs whose config or summary name a server path (uploads, ``init_from`` directories) are
loaded as models in one more query and shown through the same ``config_public``/``summary_public``
as the detail, so the list never shows what the detail hides.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from django.db import connection
from django.db.models import QuerySet
from django.utils import timezone
from rest_framework import serializers

from layerlab.apps.runs.files import run_file_relative
from layerlab.apps.runs.models import Checkpoint, Run, RunTag
from layerlab.apps.runs.references import config_public, summary_public
from layerlab.core.errors import CheckpointError

# Every field of a list row, in the detail's order (RunSerializer.Meta.fields).
FIELDS = [
    "id", "project", "name", "tags", "origin", "status", "progress", "config", "network", "dataset", "parent",
    "created_at", "started_at", "finished_at", "seconds", "summary", "verdict", "error",
    "cancel_requested", "attempts", "checkpoints", "children",
]  # fmt: skip
# The columns each field reads (a field not listed reads the column of its name).
COLUMNS = {
    "project": ["project_id"],
    "network": ["network_id"],
    "dataset": ["dataset_id"],
    "parent": ["parent_id"],
    "progress": ["epoch", "epochs"],
    "seconds": ["started_at", "finished_at", "heartbeat_at"],
    "config": ["config", "parent_id", "dataset_id"],
    "summary": ["summary", "config", "dataset_id"],
    "checkpoints": ["origin", "run_dir"],
    "tags": [],
    "children": [],
}


def checkpoint_shown(run, path: str) -> str:
    """A checkpoint's path inside its run directory (its file name when it lies elsewhere)."""
    try:
        return run_file_relative(run=run, path=path)
    except CheckpointError:
        return PurePosixPath(str(path).replace("\\", "/")).name


def fields_parse(text: str | None) -> list[str]:
    """``?fields=id,name,status`` as list fields (all of them when absent); 400 naming an unknown one."""
    if not text:
        return list(FIELDS)
    wanted = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in wanted if f not in FIELDS]
    if unknown or not wanted:
        raise serializers.ValidationError(
            {"fields": [f"unknown field '{(unknown or [''])[0]}'; choose from {', '.join(FIELDS)}"]}
        )
    return [f for f in FIELDS if f in wanted]


def _needs_model(config, summary) -> bool:
    """Whether ``config_public``/``summary_public`` could change this config or summary (it names a path)."""
    if isinstance(config, dict):
        data, model = config.get("data"), config.get("model")
        if isinstance(data, dict) and data.get("path"):
            return True
        if isinstance(model, dict) and model.get("init_from"):
            return True
    if isinstance(summary, dict):
        if isinstance(summary.get("init_from"), dict):
            return True
        report = summary.get("data_report")
        if isinstance(report, dict) and isinstance(report.get("source"), str):
            return True
    return False


def _when(value, zone):
    """DRF's ISO 8601 form of an aware datetime (``...Z`` in UTC), without its per-value overhead."""
    if value is None:
        return None
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def run_list_values(runs: QuerySet, fields: list[str]) -> QuerySet:
    """``runs`` (filtered and ordered) as the plain values that ``fields`` need; page it, then ``run_list_rows``."""
    columns = {"id"}
    for field in fields:
        columns.update(COLUMNS.get(field, [field]))
    return runs.values(*sorted(columns))


def _rows_of(model, columns: list[str], key: str, ids: list[int], order: str) -> list[tuple]:
    """``SELECT columns FROM model WHERE key IN ids ORDER BY order`` with a plain cursor (the ORM's
    per-value handling of a 1,000-id ``IN`` list cost more than the query)."""
    quote = connection.ops.quote_name
    ordering = ", ".join(quote(c.strip()) for c in order.split(","))
    sql = (
        f"SELECT {', '.join(quote(c) for c in columns)} FROM {quote(model._meta.db_table)} "
        f"WHERE {quote(key)} IN ({', '.join(['%s'] * len(ids))}) ORDER BY {ordering}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids)
        return cursor.fetchall()


def run_list_rows(rows: list[dict], fields: list[str]) -> list[dict]:
    """A page of ``run_list_values`` rows as list items with ``fields`` only: three more queries at most
    (tags, checkpoints, children), one more when some run's config or summary names a path."""
    ids = [row["id"] for row in rows]
    tags: dict[int, list[str]] = {}
    checkpoints: dict[int, list] = {}
    children: dict[int, list[int]] = {}
    if ids and "tags" in fields:
        for run_id, name in _rows_of(RunTag, ["run_id", "name"], "run_id", ids, "id"):
            tags.setdefault(run_id, []).append(name)
    if ids and "checkpoints" in fields:
        for run_id, cid, epoch, path in _rows_of(
            Checkpoint, ["run_id", "id", "epoch", "path"], "run_id", ids, "epoch, id"
        ):
            checkpoints.setdefault(run_id, []).append((cid, epoch, path))
    if ids and "children" in fields:
        for parent, child in _rows_of(Run, ["parent_id", "id"], "parent_id", ids, "id"):
            children.setdefault(parent, []).append(child)
    shown_config, shown_summary = "config" in fields, "summary" in fields
    redacted: dict[int, Run] = {}
    if shown_config or shown_summary:
        special = [r["id"] for r in rows if _needs_model(r.get("config"), r.get("summary"))]
        if special:
            redacted = Run.objects.select_related("dataset", "parent").in_bulk(special)
    zone = timezone.get_current_timezone()
    out = []
    for row in rows:
        run_id = row["id"]
        item = {}
        for field in fields:
            if field == "project":
                item[field] = row["project_id"]
            elif field in ("network", "dataset", "parent"):
                item[field] = row[f"{field}_id"]
            elif field == "tags":
                item[field] = tags.get(run_id, [])
            elif field == "progress":
                epoch, epochs = row["epoch"], row["epochs"]
                item[field] = {"epoch": epoch, "epochs": epochs, "text": f"epoch {epoch} of {epochs}"}
            elif field == "seconds":
                start = row["started_at"]
                end = (row["finished_at"] or row["heartbeat_at"] or start) if start else None
                item[field] = round((end - start).total_seconds(), 3) if start else None
            elif field in ("created_at", "started_at", "finished_at"):
                item[field] = _when(row[field], zone)
            elif field == "config":
                model = redacted.get(run_id)
                item[field] = config_public(model) if model is not None else (row["config"] or {})
            elif field == "summary":
                model = redacted.get(run_id)
                summary = row["summary"]
                item[field] = (
                    summary_public(model) if model is not None and isinstance(summary, dict) else summary
                )
            elif field == "checkpoints":
                recorded = checkpoints.get(run_id)
                owner = Run(id=run_id, origin=row["origin"], run_dir=row["run_dir"]) if recorded else None
                item[field] = [
                    {"id": cid, "epoch": epoch, "path": checkpoint_shown(owner, path)}
                    for cid, epoch, path in recorded or []
                ]
            elif field == "children":
                item[field] = sorted(children.get(run_id, []))
            else:
                item[field] = row[field]
        out.append(item)
    return out
