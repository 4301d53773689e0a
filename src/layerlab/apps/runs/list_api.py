"""The runs list's rows: the detail's fields (or those ``?fields=`` names), built in a constant number of queries.

A page of runs is read as plain values (no model instances, no per-run prefetch querysets): the
page's rows in one query, then its tags, checkpoints and children in one query each. Only the
columns the requested fields need are read; the config and summary JSON only when asked for.
The few runs whose config or summary name a server path (uploads, ``init_from`` directories) are
loaded as models in one more query and shown through the same ``config_public``/``summary_public``
as the detail, so the list never shows what the detail hides.

The page's query is the ORM's (filters, visibility, ordering, the page's window), run on a plain
cursor and converted column by column: the ORM's per-value converters and a per-field branch for
every cell were most of a 1,000-run page's time.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import PurePosixPath

from django.core.exceptions import EmptyResultSet
from django.db import connection, connections
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_datetime
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


def _is_utc(zone) -> bool:
    return zone is dt.UTC or getattr(zone, "key", None) in ("UTC", "Etc/UTC")


def _when(value, zone, zone_is_utc: bool):
    """DRF's ISO 8601 form of a datetime in ``zone`` (``...Z`` in UTC), without its per-value overhead.

    A naive value is UTC (``_datetimes``): shown in UTC it is its own ISO form plus ``Z``.
    """
    if value is None:
        return None
    if value.tzinfo is None:
        if zone_is_utc:
            return value.isoformat() + "Z"
        value = value.replace(tzinfo=dt.UTC)
    text = value.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _datetimes(db_zone):
    """A column of stored datetimes read as the ORM does (text parsed; naive values are in the
    database's zone), except that naive UTC values stay naive: ``_when`` and ``seconds`` read them as
    UTC, and making every one aware was a tenth of a 1,000-run page. PostgreSQL's are aware already."""
    keep_naive = db_zone is None or _is_utc(db_zone)

    def convert(values):
        out = []
        for value in values:
            if isinstance(value, str):
                value = parse_datetime(value)
            if value is not None and value.tzinfo is None and not keep_naive:
                value = value.replace(tzinfo=db_zone)
            out.append(value)
        return out

    return convert


def _json(values):
    """A column of JSON text as values (as ``JSONField.from_db_value``); already decoded ones pass."""
    return [json.loads(v) if isinstance(v, (str, bytes)) else v for v in values]


def _booleans(values):
    return [v if v is None else bool(v) for v in values]


def _column_converter(field, db_connection):
    """What turns one column's raw values into the field's Python values (None: nothing to do)."""
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        return _datetimes(db_connection.timezone)
    if kind == "JSONField":
        return _json
    if kind == "BooleanField":
        return _booleans
    col = field.get_col(field.model._meta.db_table)
    converters = db_connection.ops.get_db_converters(col) + field.get_db_converters(db_connection)
    if not converters:
        return None

    def convert(values):
        out = []
        for value in values:
            for converter in converters:
                value = converter(value, col, db_connection)
            out.append(value)
        return out

    return convert


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


class RunRows:
    """The filtered, ordered runs as the paginator sees them (``count()`` and slices), then list items.

    Args:
        runs: the runs the caller may see, filtered and ordered.
        fields: the list fields wanted (``fields_parse``).
    """

    def __init__(self, runs: QuerySet, fields: list[str]):
        columns = {"id"}
        for field in fields:
            columns.update(COLUMNS.get(field, [field]))
        self.fields = fields
        self.columns = sorted(columns)
        self.runs = runs.values_list(*self.columns)
        self.names: list[str] = []  # the fetched rows' columns, from the cursor

    def count(self) -> int:
        return self.runs.count()

    def __getitem__(self, window: slice) -> list[tuple]:
        return self._fetch(self.runs[window])

    def __iter__(self):
        return iter(self._fetch(self.runs))

    def _fetch(self, runs: QuerySet) -> list[tuple]:
        """The rows of ``runs`` (the ORM's SQL) from a plain cursor: raw values, converted by ``items``."""
        try:
            sql, params = runs.query.get_compiler(using=runs.db).as_sql()
        except EmptyResultSet:  # e.g. ``id__in=[]``: no row can match
            return []
        with connections[runs.db].cursor() as cursor:
            cursor.execute(sql, params)
            self.names = [column[0] for column in cursor.description]
            return cursor.fetchall()

    def _table(self, rows: list[tuple]) -> dict[str, list]:
        """The page column by column, each column converted as the ORM would."""
        db_connection = connections[self.runs.db]
        fields = {f.attname: f for f in Run._meta.concrete_fields}
        raw = dict(zip(self.names, zip(*rows, strict=True), strict=False))
        table = {}
        for column in self.columns:
            values = list(raw[column])
            convert = _column_converter(fields[column], db_connection)
            table[column] = convert(values) if convert else values
        return table

    def items(self, rows: list[tuple]) -> list[dict]:
        """A page of rows as list items with ``fields`` only: three more queries at most (tags,
        checkpoints, children), one more when some run's config or summary names a path."""
        if not rows:
            return []
        table = self._table(rows)
        if "config" in self.fields or "summary" in self.fields:
            table["_redacted"] = _redacted(table)
        values = [_field_values(field, table) for field in self.fields]
        return [dict(zip(self.fields, item, strict=True)) for item in zip(*values, strict=True)]


def _redacted(table: dict[str, list]) -> dict[int, Run]:
    """The page's runs whose config or summary names a server path, as models (one query): shown
    through ``config_public``/``summary_public`` like the detail."""
    summaries = table.get("summary") or [None] * len(table["id"])
    special = [
        run_id
        for run_id, config, summary in zip(table["id"], table["config"], summaries, strict=True)
        if _needs_model(config, summary)
    ]
    return Run.objects.select_related("dataset", "parent").in_bulk(special) if special else {}


def _owned(model, columns: list[str], ids: list[int], order: str) -> dict[int, list]:
    """Rows of ``model`` owned by the page's runs (first column: the run's id), grouped by run."""
    owned: dict[int, list] = {}
    for run_id, *rest in _rows_of(model, columns, columns[0], ids, order):
        owned.setdefault(run_id, []).append(rest[0] if len(rest) == 1 else tuple(rest))
    return owned


def _field_values(field: str, table: dict[str, list]) -> list:
    """One field's value for every run of the page (``table``: the page's converted columns)."""
    ids = table["id"]
    if field in ("project", "network", "dataset", "parent"):
        return table[f"{field}_id"]
    if field == "tags":
        tags = _owned(RunTag, ["run_id", "name"], ids, "id")
        return [tags.get(run_id, []) for run_id in ids]
    if field == "children":
        children = _owned(Run, ["parent_id", "id"], ids, "id")
        return [sorted(children.get(run_id, [])) for run_id in ids]
    if field == "checkpoints":
        return _checkpoints(table)
    if field == "progress":
        return [
            {"epoch": epoch, "epochs": epochs, "text": f"epoch {epoch} of {epochs}"}
            for epoch, epochs in zip(table["epoch"], table["epochs"], strict=True)
        ]
    if field == "seconds":
        times = zip(table["started_at"], table["finished_at"], table["heartbeat_at"], strict=True)
        return [
            round(((finished or heartbeat or start) - start).total_seconds(), 3) if start else None
            for start, finished, heartbeat in times
        ]
    if field in ("created_at", "started_at", "finished_at"):
        zone = timezone.get_current_timezone()
        zone_is_utc = _is_utc(zone)
        return [_when(value, zone, zone_is_utc) for value in table[field]]
    if field == "config":
        redacted = table["_redacted"]
        return [
            config_public(redacted[run_id]) if run_id in redacted else (config or {})
            for run_id, config in zip(ids, table["config"], strict=True)
        ]
    if field == "summary":
        redacted = table["_redacted"]
        return [
            summary_public(redacted[run_id]) if run_id in redacted and isinstance(summary, dict) else summary
            for run_id, summary in zip(ids, table["summary"], strict=True)
        ]
    return table[field]


def _checkpoints(table: dict[str, list]) -> list[list[dict]]:
    """Each run's checkpoints (epoch order), their paths shown inside the run directory."""
    ids = table["id"]
    recorded = _owned(Checkpoint, ["run_id", "id", "epoch", "path"], ids, "epoch, id")
    out = []
    for run_id, origin, run_dir in zip(ids, table["origin"], table["run_dir"], strict=True):
        own = recorded.get(run_id, [])
        owner = Run(id=run_id, origin=origin, run_dir=run_dir) if own else None
        out.append(
            [{"id": cid, "epoch": epoch, "path": checkpoint_shown(owner, path)} for cid, epoch, path in own]
        )
    return out
