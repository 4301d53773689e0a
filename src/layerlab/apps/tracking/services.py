"""Writes of the MLflow protocol: experiments become projects, runs logged runs (``origin: client``).

A run's MLflow params are its config's ``params`` mapping (what the run page shows as the config); its
MLflow tags are kept whole in ``config.mlflow_tags`` and, where ``key=value`` (or a bare key) fits the
lab's tag rule and is no ``mlflow.*`` system tag, also as one of the run's labels. Metrics go through
the runs app's ingestion service (``metrics_ingest``), one point per series and step.
"""

from __future__ import annotations

import math
import re

from django.db import IntegrityError, transaction

from layerlab.apps.projects.models import Project, Role
from layerlab.apps.projects.selectors import project_role
from layerlab.apps.projects.services import project_create
from layerlab.apps.runs.metrics import MAX_POINTS_PER_BATCH, metrics_ingest
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import (
    run_delete,
    run_finish_external,
    run_rename,
    run_start_external,
    run_tags_set,
)
from layerlab.apps.runs.tags import MAX_TAGS, tag_check
from layerlab.apps.tracking.errors import TrackingError, invalid
from layerlab.apps.tracking.selectors import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    STATUS_FROM_MLFLOW,
    WRITE_COLUMNS,
    experiment_default,
    experiment_get_visible,
    run_get_for,
)
from layerlab.core.errors import LayerlabError

# MLflow's own limits for one log-batch request.
MAX_METRICS, MAX_PARAMS, MAX_TAG_ITEMS = 1000, 100, 100
MAX_KEY, MAX_PARAM_VALUE, MAX_TAG_VALUE = 250, 6000, 8000
METRIC_NAME = re.compile(r"^[\w./:-]{1,100}$")  # the lab's series names (runs.metrics_api)
SYSTEM_PREFIX = "mlflow."


def experiment_default_ensure(*, user) -> Project:
    """The user's ``Default`` project (MLflow's experiment ``0``), made on first use."""
    project = experiment_default(user=user)
    if project is None:
        try:
            with transaction.atomic():
                project = project_create(owner=user, name=DEFAULT_EXPERIMENT_NAME)
        except (IntegrityError, LayerlabError):  # made meanwhile by a parallel request
            project = experiment_default(user=user)
    return project


def experiment_create(*, user, name, tags=None) -> Project:
    """A new project owned by the user; its description is the ``mlflow.note.content`` tag, if given."""
    name = str(name or "").strip()
    if not name:
        raise invalid("an experiment needs a name", where="name")
    if len(name) > 200:
        raise invalid("an experiment name has at most 200 characters", where="name")
    if Project.objects.filter(owner=user, name=name).exists():
        raise TrackingError("RESOURCE_ALREADY_EXISTS", f"experiment '{name}' already exists")
    note = ""
    for tag in tags or []:
        if isinstance(tag, dict) and tag.get("key") == "mlflow.note.content":
            note = str(tag.get("value") or "")
    try:
        with transaction.atomic():
            return project_create(owner=user, name=name, description=note)
    except IntegrityError:
        raise TrackingError("RESOURCE_ALREADY_EXISTS", f"experiment '{name}' already exists") from None


def experiment_for_write(*, user, experiment_id) -> Project:
    """The project a new run goes to: the experiment, which the user may edit (``0``: their default)."""
    if str(experiment_id or DEFAULT_EXPERIMENT_ID).strip() in ("", DEFAULT_EXPERIMENT_ID):
        return experiment_default_ensure(user=user)
    project = experiment_get_visible(user=user, experiment_id=experiment_id)
    have = project_role(user=user, project=project)
    if have < Role.EDITOR:
        raise TrackingError(
            "PERMISSION_DENIED",
            f"this needs the editor role in project '{project.name}'; you are {have.label}",
        )
    return project


def _pairs(items, what: str, limit: int, value_limit: int) -> list[tuple[str, str]]:
    if items in (None, ""):
        return []
    if not isinstance(items, list):
        raise invalid(f"{what} must be a list of {{key, value}}", where=what)
    if len(items) > limit:
        raise invalid(f"{len(items)} {what} in one request, the limit is {limit}", where=what)
    pairs = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"].strip():
            raise invalid(f"each of {what} needs a key", where=what)
        key, value = item["key"], item.get("value")
        value = "" if value is None else str(value)
        if len(key) > MAX_KEY:
            raise invalid(f"key '{key[:40]}…' is longer than {MAX_KEY} characters", where=what)
        if len(value) > value_limit:
            raise invalid(f"the value of '{key}' is longer than {value_limit} characters", where=what)
        pairs.append((key, value))
    return pairs


def _number(value, what: str, *, whole: bool):
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        raise invalid(f"{what} '{str(value)[:40]}' is not a number", where=what) from None
    if not whole and not math.isfinite(number):
        raise invalid(f"value {value} is not a finite number (the lab stores finite values)", where=what)
    return number


def metric_rows(items) -> list[tuple[str, int, float]]:
    """MLflow metrics ``{key, value, step, timestamp}`` as the lab's ``(name, step, value)`` rows."""
    if items in (None, ""):
        return []
    if not isinstance(items, list):
        raise invalid("metrics must be a list of {key, value, step}", where="metrics")
    if len(items) > min(MAX_METRICS, MAX_POINTS_PER_BATCH):
        raise invalid(f"{len(items)} metrics in one request, the limit is {MAX_METRICS}", where="metrics")
    rows = []
    for item in items:
        key = item.get("key") if isinstance(item, dict) else None
        if not isinstance(key, str) or not METRIC_NAME.match(key):
            raise invalid(
                f"metric name '{str(key)[:40]}' is not allowed",
                hint="1-100 letters, digits or . _ / : -",
                where="metrics",
            )
        step = _number(item.get("step") or 0, "step", whole=True)
        rows.append((key, step, _number(item.get("value"), key, whole=False)))
    return rows


def _labels(tags: dict[str, str]) -> list[str]:
    """The lab labels of MLflow tags: ``key=value`` (a bare key when the value is empty) where it fits."""
    labels = []
    for key, value in tags.items():
        if key.startswith(SYSTEM_PREFIX):
            continue
        text = f"{key}={value}" if value else key
        try:
            label = tag_check(text)
        except LayerlabError:
            continue
        if label not in labels and len(labels) < MAX_TAGS:
            labels.append(label)
    return labels


def _check_logged(run: Run) -> None:
    if run.origin != Run.Origin.CLIENT:
        raise TrackingError(
            "INVALID_STATE",
            f"run {run.id} is trained by the lab; MLflow clients write only to runs they logged",
        )


@transaction.atomic
def run_create(*, user, experiment_id, run_name: str = "", tags=None) -> Run:
    """A logged run (running) in the experiment, with its MLflow tags."""
    project = experiment_for_write(user=user, experiment_id=experiment_id)
    pairs = dict(_pairs(tags, "tags", MAX_TAG_ITEMS, MAX_TAG_VALUE))
    name = str(run_name or pairs.get("mlflow.runName") or "").strip()[:200]
    if name:
        pairs["mlflow.runName"] = name
    return run_start_external(
        project=project,
        user=user,
        name=name,
        config={"params": {}, "mlflow_tags": pairs},
        tags=_labels(pairs),
    )


@transaction.atomic
def run_update(*, user, run_id, status: str | None = None, run_name: str | None = None) -> Run:
    """End a logged run (``FINISHED``/``FAILED``/``KILLED``) and/or rename it; ending an ended run changes nothing."""
    run = run_get_for(user=user, run_id=run_id, role=Role.EDITOR)
    if run_name:
        _check_logged(run)
        run = run_rename(run=run, name=str(run_name))
        tags = dict((run.config or {}).get("mlflow_tags") or {})
        tags["mlflow.runName"] = run.name
        Run.objects.filter(id=run.id).update(config={**run.config, "mlflow_tags": tags})
        run.config = {**run.config, "mlflow_tags": tags}
    if status:
        wanted = STATUS_FROM_MLFLOW.get(str(status).upper())
        if wanted is None:
            raise invalid(f"status '{status}' is not one of {', '.join(STATUS_FROM_MLFLOW)}", where="status")
        if wanted in Run.FINISHED and run.status == Run.Status.RUNNING:
            _check_logged(run)
            run = run_finish_external(run=run, status=wanted, summary=dict(run.summary or {}))
    return Run.objects.select_related("project", "created_by").get(id=run.id)


def run_remove(*, user, run_id) -> None:
    """Delete a run (the lab's rule: the project's owner); a logged run still running is first marked killed.

    Two transactions: the finish commits (and its hooks, the journal's, run) before the delete.
    """
    run = run_get_for(user=user, run_id=run_id, role=Role.OWNER)
    if run.status == Run.Status.RUNNING and run.origin == Run.Origin.CLIENT:
        run = run_finish_external(run=run, status=Run.Status.CANCELLED, summary=dict(run.summary or {}))
    try:
        run_delete(run=run)
    except LayerlabError as error:
        raise TrackingError("INVALID_STATE", error.message, hint=error.hint) from None


@transaction.atomic
def run_log(*, user, run_id, metrics=None, params=None, tags=None) -> None:
    """One log-batch (or log-metric, log-parameter, set-tag): all of it stored, or nothing.

    Params are write-once, as in MLflow: logging a key again with another value is refused.
    """
    rows = metric_rows(metrics)
    param_pairs = _pairs(params, "params", MAX_PARAMS, MAX_PARAM_VALUE)
    tag_pairs = _pairs(tags, "tags", MAX_TAG_ITEMS, MAX_TAG_VALUE)
    run = run_get_for(user=user, run_id=run_id, role=Role.EDITOR, columns=WRITE_COLUMNS)
    _check_logged(run)
    if param_pairs or tag_pairs:
        run = Run.objects.select_for_update().select_related("project").get(id=run.id)
        config = dict(run.config or {})
        stored = dict(config.get("params") or {})
        for key, value in param_pairs:
            if key in stored and stored[key] != value:
                raise invalid(
                    f"param '{key}' is already '{stored[key][:100]}'; a param is logged once",
                    where="params",
                )
            stored[key] = value
        mlflow_tags = dict(config.get("mlflow_tags") or {})
        old_labels = set(_labels(mlflow_tags))
        mlflow_tags.update(tag_pairs)
        config.update(params=stored, mlflow_tags=mlflow_tags)
        Run.objects.filter(id=run.id).update(config=config)
        run.config = config
        if tag_pairs:
            new_labels = _labels(mlflow_tags)
            current = list(run.tags.values_list("name", flat=True))
            keep = [t for t in current if t not in old_labels or t in new_labels]
            merged = keep + [t for t in new_labels if t not in keep]
            if merged != current:
                run_tags_set(run=run, tags=merged[:MAX_TAGS])
        if "mlflow.runName" in dict(tag_pairs):
            run_rename(run=run, name=dict(tag_pairs)["mlflow.runName"][:200])
    if rows:
        metrics_ingest(run=run, rows=rows)
