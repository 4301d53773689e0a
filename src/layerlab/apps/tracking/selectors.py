"""Reads of the MLflow protocol: experiments (projects the user may see), runs, their metrics, as MLflow's JSON.

Everything a user may not see answers exactly like something missing (``RESOURCE_DOES_NOT_EXIST``).
"""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime

from django.db import connection
from django.db.models import F, FloatField, OuterRef, Q, QuerySet, Subquery, TextField
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from layerlab.apps.projects.models import Project, Role
from layerlab.apps.projects.selectors import project_list_visible, project_role
from layerlab.apps.runs.models import MetricPoint, Run
from layerlab.apps.tracking.errors import TrackingError, invalid, not_found
from layerlab.apps.tracking.search import TEXT_ATTRIBUTES, like_regex, parse_filter, parse_order

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
MAX_RESULTS = 1000  # a page of search results; the client pages on with the token
HISTORY_PAGE = 25_000  # metric history points per page

STATUS_TO_MLFLOW = {
    Run.Status.QUEUED: "SCHEDULED",
    Run.Status.RUNNING: "RUNNING",
    Run.Status.SUCCEEDED: "FINISHED",
    Run.Status.FAILED: "FAILED",
    Run.Status.CANCELLED: "KILLED",
}
STATUS_FROM_MLFLOW = {value: key for key, value in STATUS_TO_MLFLOW.items()}


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def from_ms(value: float) -> datetime:
    return datetime.fromtimestamp(value / 1000, tz=UTC)


def run_id_parse(run_id) -> int:
    """The lab's run id of an MLflow ``run_id`` (a decimal string); anything else is a run that does not exist."""
    text = str(run_id or "").strip()
    if not text.isdigit() or len(text) > 18:
        raise not_found(f"run '{text[:40]}'")
    return int(text)


# --- experiments -------------------------------------------------------------------------------


def experiment_json(project: Project) -> dict:
    tags = [{"key": "mlflow.note.content", "value": project.description}] if project.description else []
    return {
        "experiment_id": str(project.id),
        "name": project.name,
        "artifact_location": "",
        "lifecycle_stage": "active",
        "creation_time": ms(project.created_at),
        "last_update_time": ms(project.created_at),
        "tags": tags,
    }


def experiment_get_visible(*, user, experiment_id) -> Project:
    """The project behind ``experiment_id`` if the user may see it (``"0"``: their default project, if any)."""
    text = str(experiment_id or "").strip()
    if text == DEFAULT_EXPERIMENT_ID:
        project = experiment_default(user=user)
        if project is not None:
            return project
    elif text.isdigit() and len(text) <= 18:
        project = project_list_visible(user=user).filter(id=int(text)).first()
        if project is not None:
            return project
    raise not_found(f"experiment '{text[:40]}'")


def experiment_default(*, user) -> Project | None:
    """The user's own project named ``Default`` (``tracking.services.experiment_default_ensure`` makes it)."""
    return Project.objects.filter(owner=user, name=DEFAULT_EXPERIMENT_NAME).order_by("id").first()


def experiment_by_name(*, user, name: str) -> Project:
    """The visible project of that name: the user's own first, then the oldest shared one."""
    projects = project_list_visible(user=user).filter(name=name)
    project = projects.filter(owner=user).order_by("id").first() or projects.order_by("id").first()
    if project is None:
        raise not_found(f"experiment '{name[:200]}'")
    return project


def page_offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()).decode())["offset"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        raise invalid("the page_token is not one this server gave", where="page_token") from None
    if not isinstance(offset, int) or offset < 0:
        raise invalid("the page_token is not one this server gave", where="page_token")
    return offset


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode()


def page_size(max_results, default: int) -> int:
    if max_results in (None, ""):
        return default
    try:
        size = int(max_results)
    except (TypeError, ValueError):
        raise invalid("max_results must be a whole number", where="max_results") from None
    if size < 1 or size > 50_000:
        raise invalid("max_results must be between 1 and 50000", where="max_results")
    return min(size, MAX_RESULTS)


def experiments_search(*, user, filter_string: str = "", max_results=None, order_by=None, token=None):
    """Visible projects as experiments: ``name = 'x'`` / ``name LIKE 'x%'`` filters, ``name`` or time orders."""
    projects = project_list_visible(user=user)
    for part in [p for p in re.split(r"\s+AND\s+", filter_string or "", flags=re.IGNORECASE) if p.strip()]:
        field, _, rest = part.strip().partition(" ")
        field = field.removeprefix("attribute.").removeprefix("attributes.").lower()
        op, _, value = rest.strip().partition(" ")
        value = value.strip()
        if field != "name" or len(value) < 2 or value[0] not in "'\"" or value[-1] != value[0]:
            raise invalid(
                f"cannot search experiments by '{part.strip()[:60]}'", hint="use name = 'x' or name LIKE 'x%'"
            )
        value, op = value[1:-1], op.upper()
        if op == "=":
            projects = projects.filter(name=value)
        elif op == "!=":
            projects = projects.exclude(name=value)
        elif op in ("LIKE", "ILIKE"):
            lookup = "name__regex" if op == "LIKE" else "name__iregex"
            projects = projects.filter(**{lookup: like_regex(value)})
        else:
            raise invalid(f"experiments compare names with = != LIKE ILIKE, not '{op}'", where="filter")
    fields = {
        "name": "name",
        "experiment_id": "id",
        "creation_time": "created_at",
        "last_update_time": "created_at",
    }
    ordering = []
    for item in order_by or []:
        words = str(item).split()
        key = words[0].removeprefix("attribute.").removeprefix("attributes.") if words else ""
        if key not in fields:
            raise invalid(f"cannot order experiments by '{item}'", where="order_by")
        desc = len(words) > 1 and words[1].upper() == "DESC"
        ordering.append(("-" if desc else "") + fields[key])
    projects = projects.order_by(*(ordering or ["-created_at"]), "-id")
    offset, size = page_offset(token), page_size(max_results, MAX_RESULTS)
    rows = list(projects[offset : offset + size + 1])
    more = len(rows) > size
    return [experiment_json(p) for p in rows[:size]], (page_token(offset + size) if more else None)


# --- runs ---------------------------------------------------------------------------------------


# What a write reads of its run and project (the other columns load on first use).
WRITE_COLUMNS = ("id", "project_id", "name", "origin", "status", "heartbeat_at")
PROJECT_COLUMNS = ("id", "name", "owner_id", "description")


def run_get_for(*, user, run_id, role: Role = Role.VIEWER, columns: tuple[str, ...] | None = None) -> Run:
    """The run if the user may see it and holds ``role`` in its project (403 when they see it but may not).

    Args:
        columns: only these columns of the run (the write path's ``WRITE_COLUMNS``); None: all.
    """
    # Plain queries (no ORM query building): this is on the path of every logged training step.
    quote = connection.ops.quote_name
    wanted = ", ".join(quote(c) for c in columns) if columns else "*"
    sql = f"SELECT {wanted} FROM {quote(Run._meta.db_table)} WHERE {quote('id')} = %s"
    run = next(iter(Run.objects.raw(sql, [run_id_parse(run_id)])), None)
    if run is not None:
        wanted = ", ".join(quote(c) for c in PROJECT_COLUMNS)
        sql = f"SELECT {wanted} FROM {quote(Project._meta.db_table)} WHERE {quote('id')} = %s"
        run.project = next(iter(Project.objects.raw(sql, [run.project_id])))
    have = Role.NONE if run is None else project_role(user=user, project=run.project)
    if have == Role.NONE:
        raise not_found(f"run '{str(run_id)[:40]}'")
    if have < role:
        raise TrackingError(
            "PERMISSION_DENIED",
            f"this needs the {role.label} role in project '{run.project.name}'; you are {have.label}",
        )
    return run


def latest_metrics(run_ids: list[int]) -> dict[int, list[dict]]:
    """Each run's series at their last step: ``{run_id: [{"key", "value", "step", "timestamp"}]}``."""
    if not run_ids:
        return {}
    quote = connection.ops.quote_name
    table = quote(MetricPoint._meta.db_table)
    marks = ", ".join(["%s"] * len(run_ids))
    run, name, step, value = (quote(c) for c in ("run_id", "name", "step", "value"))
    sql = (
        f"SELECT p.{run}, p.{name}, p.{value}, p.{step} FROM {table} p JOIN ("
        f"SELECT {run} AS r, {name} AS n, MAX({step}) AS s FROM {table} WHERE {run} IN ({marks}) "
        f"GROUP BY {run}, {name}) last ON p.{run} = last.r AND p.{name} = last.n AND p.{step} = last.s "
        f"ORDER BY p.{name}"
    )
    out: dict[int, list[dict]] = {}
    with connection.cursor() as cursor:
        cursor.execute(sql, list(run_ids))
        for run_id, key, val, at in cursor.fetchall():
            out.setdefault(run_id, []).append({"key": key, "value": val, "step": at})
    return out


def flat(mapping, prefix: str = "") -> dict[str, str]:
    """A nested config as MLflow params (``train.lr: "0.01"``), for runs the lab trained."""
    out: dict[str, str] = {}
    for key, value in (mapping or {}).items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if isinstance(value, list | bool) or value is None else str(value)
    return out


def run_params(run: Run) -> dict[str, str]:
    config = run.config or {}
    if run.origin == Run.Origin.CLIENT and isinstance(config.get("params"), dict):
        return {str(k): str(v) for k, v in config["params"].items()}
    return flat(config)


def run_mlflow_tags(run: Run, labels: list[str]) -> dict[str, str]:
    """The run's MLflow tags (kept in ``config.mlflow_tags``) and its lab labels not made from one (value "")."""
    tags = dict((run.config or {}).get("mlflow_tags") or {}) if run.origin == Run.Origin.CLIENT else {}
    made = {f"{k}={v}" for k, v in tags.items()}
    for label in labels:
        if label not in made and label not in tags:
            tags[label] = ""
    if "mlflow.runName" not in tags:
        tags["mlflow.runName"] = str(run)
    return tags


def run_json(run: Run, metrics: list[dict], labels: list[str]) -> dict:
    started = ms(run.started_at or run.created_at)
    info = {
        "run_id": str(run.id),
        "run_uuid": str(run.id),
        "run_name": str(run),
        "experiment_id": str(run.project_id),
        "user_id": run.created_by.username if run.created_by else "",
        "status": STATUS_TO_MLFLOW.get(run.status, "RUNNING"),
        "start_time": started,
        "artifact_uri": "",
        "lifecycle_stage": "active",
    }
    if run.finished_at:
        info["end_time"] = ms(run.finished_at)
    return {
        "info": info,
        "data": {
            "metrics": [{**m, "timestamp": started} for m in metrics],
            "params": [{"key": k, "value": v} for k, v in run_params(run).items()],
            "tags": [{"key": k, "value": v} for k, v in run_mlflow_tags(run, labels).items()],
        },
        "inputs": {},
    }


def runs_json(runs: list[Run]) -> list[dict]:
    metrics = latest_metrics([r.id for r in runs])
    return [run_json(r, metrics.get(r.id, []), [t.name for t in r.tags.all()]) for r in runs]


def run_get_json(*, user, run_id) -> dict:
    run = run_get_for(user=user, run_id=run_id)
    labels = list(run.tags.values_list("name", flat=True))
    return run_json(run, latest_metrics([run.id]).get(run.id, []), labels)


def _latest_value(key: str):
    points = MetricPoint.objects.filter(run=OuterRef("pk"), name=key).order_by("-step")
    return Subquery(points.values("value")[:1], output_field=FloatField())


def _config_text(root: str, key: str):
    """A logged run's param (``config.params``) or MLflow tag (``config.mlflow_tags``) as text."""
    # Cast to text: compared with a JSON key, Django would read the right-hand side as JSON.
    return Cast(KeyTextTransform(key, KeyTransform(root, "config")), output_field=TextField())


ATTRIBUTE_FIELDS = {
    "run_id": "id", "run_name": "name", "status": "status", "start_time": "started_at",
    "end_time": "finished_at", "created": "created_at", "user_id": "created_by__username",
    "experiment_id": "project_id",
}  # fmt: skip
LOOKUPS = {"=": "exact", "<": "lt", "<=": "lte", ">": "gt", ">=": "gte", "LIKE": "regex", "ILIKE": "iregex"}


def _text_value(key: str, value: str):
    if key == "status":
        if value.upper() not in STATUS_FROM_MLFLOW:
            raise invalid(f"status '{value}' is not one of {', '.join(STATUS_FROM_MLFLOW)}", where="filter")
        return STATUS_FROM_MLFLOW[value.upper()]
    if key in ("run_id", "experiment_id"):
        return int(value) if value.isdigit() and len(value) <= 18 else -1
    return value


def runs_filter(runs: QuerySet[Run], filter_string: str) -> QuerySet[Run]:
    """Apply an MLflow filter string (``tracking.search``) in the database."""
    for n, cond in enumerate(parse_filter(filter_string)):
        if cond.entity == "metrics":
            alias = f"_metric_{n}"
            runs = runs.annotate(**{alias: _latest_value(cond.key)})
            field, value = alias, cond.value
        elif cond.entity in ("params", "tags"):
            root = "params" if cond.entity == "params" else "mlflow_tags"
            alias = f"_{cond.entity}_{n}"
            runs = runs.filter(origin=Run.Origin.CLIENT).annotate(**{alias: _config_text(root, cond.key)})
            field, value = alias, cond.value
        else:
            field = ATTRIBUTE_FIELDS[cond.key]
            if cond.op in ("IN", "NOT IN"):
                values = [_text_value(cond.key, v) for v in cond.value]
                q = Q(**{f"{field}__in": values})
                runs = runs.filter(q) if cond.op == "IN" else runs.exclude(q)
                continue
            value = (
                from_ms(cond.value) if cond.key not in TEXT_ATTRIBUTES else _text_value(cond.key, cond.value)
            )
        if cond.op in ("LIKE", "ILIKE"):
            value = like_regex(value)
        if cond.op == "!=":
            runs = runs.exclude(**{field: value})
            continue
        runs = runs.filter(**{f"{field}__{LOOKUPS[cond.op]}": value})
    return runs


def runs_order(runs: QuerySet[Run], order_by) -> QuerySet[Run]:
    ordering = []
    for n, order in enumerate(parse_order(order_by)):
        if order.entity == "metrics":
            alias = f"_order_{n}"
            runs = runs.annotate(**{alias: _latest_value(order.key)})
            expression = F(alias)
        elif order.entity in ("params", "tags"):
            alias = f"_order_{n}"
            root = "params" if order.entity == "params" else "mlflow_tags"
            runs = runs.annotate(**{alias: _config_text(root, order.key)})
            expression = F(alias)
        else:
            expression = F(ATTRIBUTE_FIELDS[order.key])
        ordering.append(
            expression.asc(nulls_last=True) if order.ascending else expression.desc(nulls_last=True)
        )
    return runs.order_by(
        *(ordering or [F("started_at").desc(nulls_last=True), F("created_at").desc()]), "-id"
    )


def runs_search(*, user, experiment_ids, filter_string="", max_results=None, order_by=None, token=None):
    """Runs of the given visible experiments, filtered and ordered; ``(runs as JSON, next page token)``."""
    projects = [experiment_get_visible(user=user, experiment_id=e) for e in experiment_ids or []]
    if not projects:
        return [], None
    runs = Run.objects.filter(project__in=projects).select_related("project", "created_by")
    runs = runs_order(runs_filter(runs, filter_string or ""), order_by)
    offset, size = page_offset(token), page_size(max_results, MAX_RESULTS)
    rows = list(runs.prefetch_related("tags")[offset : offset + size + 1])
    more = len(rows) > size
    return runs_json(rows[:size]), (page_token(offset + size) if more else None)


def metric_history(*, user, run_id, key: str, max_results=None, token=None) -> tuple[list[dict], str | None]:
    """Every point of one series, in step order, paged by ``HISTORY_PAGE`` (or ``max_results``)."""
    run = run_get_for(user=user, run_id=run_id)
    offset = page_offset(token)
    size = HISTORY_PAGE if max_results in (None, "") else min(page_size(max_results, 1), HISTORY_PAGE)
    quote = connection.ops.quote_name
    sql = (
        f"SELECT {quote('step')}, {quote('value')} FROM {quote(MetricPoint._meta.db_table)} "
        f"WHERE {quote('run_id')} = %s AND {quote('name')} = %s ORDER BY {quote('step')} LIMIT %s OFFSET %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [run.id, key, size + 1, offset])
        rows = cursor.fetchall()
    started = ms(run.started_at or run.created_at)
    points = [{"key": key, "value": v, "step": s, "timestamp": started} for s, v in rows[:size]]
    return points, (page_token(offset + size) if len(rows) > size else None)
