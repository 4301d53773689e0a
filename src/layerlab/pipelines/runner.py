"""Run a checked pipeline with Luigi (local scheduler, or luigid) and turn its outcome into an exit code.

Luigi answers 0 even when a task failed; here the run's ``LuigiStatusCode`` decides: success (with
or without retries) is 0, anything else is ``EXIT_FAILED`` and each failed stage is one line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.pipelines.spec import Pipeline
from layerlab.pipelines.stages import Lab, PipelineError, stage_execute, sweep_available
from layerlab.pipelines.targets import StageTarget
from layerlab.pipelines.tasks import failure_line, task_for

EXIT_FAILED = 1


class SchedulerError(LayerlabError):
    """The central scheduler (luigid) does not answer."""

    exit_code = 7
    kind = "scheduler_error"


@dataclass
class Outcome:
    """What a pipeline run did: its record, each stage's state, the failed stages' reasons, the exit code."""

    pipeline_id: int
    exit_code: int
    stages: list[dict] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def scheduler_check(url: str, *, timeout: float = 5.0) -> str:
    """The URL of a central scheduler that answers, normalised; else one clear error."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"'{url}' is not an http(s) URL", hint="e.g. http://localhost:8082", where="--scheduler-url"
        )
    base = url.rstrip("/") + "/"
    query = urllib.parse.urlencode({"data": json.dumps({"status": "RUNNING", "limit": False})})
    try:
        with urllib.request.urlopen(f"{base}api/task_list?{query}", timeout=timeout) as answer:
            json.loads(answer.read().decode() or "{}")["response"]
    except urllib.error.HTTPError as exc:
        raise SchedulerError(f"{url} answers HTTP {exc.code}: it is not a Luigi scheduler (luigid)") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SchedulerError(
            f"the scheduler at {url} does not answer ({reason})",
            hint="start one with: layerlab serve --luigid, or luigid --port 8082",
        ) from None
    except (ValueError, KeyError, TypeError):
        raise SchedulerError(f"{url} answers, but not as a Luigi scheduler (luigid)") from None
    return base


def pipeline_check(pipeline: Pipeline) -> None:
    """Refuse, before anything is created, what this lab cannot run."""
    for stage in pipeline.stages.values():
        if stage.kind == "sweep" and not sweep_available():
            raise PipelineError(
                "sweep stages are not available in this lab yet", where=f"stages.{stage.name}.kind"
            )


def stage_run(task) -> None:
    """A Luigi task's work: read its inputs' markers, do the stage, write its own marker, record its state."""
    from django.contrib.auth import get_user_model

    from layerlab.apps.pipelines.models import State
    from layerlab.apps.pipelines.services import pipeline_stage_set
    from layerlab.apps.projects.models import Project

    ctx = json.loads(task.context)
    pipeline = task.pipeline
    stage = pipeline.stages[task.stage]
    lab = Lab(
        user=get_user_model().objects.get(id=ctx["user"]),
        project=Project.objects.get(id=ctx["project"]),
        pipeline_id=ctx["pipeline"],
        pipeline_name=pipeline.name,
        local=bool(ctx.get("local")),
        poll_seconds=float(ctx.get("poll", 1.0)),
    )
    inputs: dict = {}
    for key, value in stage.inputs.items():
        if isinstance(value, str):
            inputs[key] = (StageTarget(pipeline.stages[value].identity).read() or {}).get("result", {})
        else:
            inputs[key] = {name: StageTarget(pipeline.stages[name].identity).read() or {} for name in value}
    pipeline_stage_set(pipeline_id=lab.pipeline_id, name=stage.name, state=State.RUNNING)
    try:
        result = stage_execute(lab, stage, inputs)
    except BaseException as exc:
        pipeline_stage_set(
            pipeline_id=lab.pipeline_id, name=stage.name, state=State.FAILED, error=failure_line(exc)
        )
        raise
    marker = {"pipeline": pipeline.name, "stage": stage.name, "kind": stage.kind, "identity": stage.identity}
    StageTarget(stage.identity).write({**marker, "result": result})
    pipeline_stage_set(pipeline_id=lab.pipeline_id, name=stage.name, state=State.DONE, result=result)


def pipeline_run(
    pipeline: Pipeline,
    *,
    user,
    project,
    scheduler_url: str | None = None,
    workers: int = 1,
    local: bool = False,
    poll_seconds: float = 1.0,
    verbose: bool = False,
) -> Outcome:
    """Run every stage whose output is missing (and what depends on it), with Luigi.

    Args:
        pipeline: the checked pipeline (``spec.pipeline_load``).
        user, project: who runs it and where its datasets, runs and report go.
        scheduler_url: a central scheduler (luigid) that already answered ``scheduler_check``; None: local.
        workers: Luigi worker processes (stages that do not depend on each other run side by side).
        local: train in this process instead of on the lab's queue.
    """
    import luigi
    from django.db import connections

    from layerlab.apps.pipelines.models import PipelineStage, State
    from layerlab.apps.pipelines.services import pipeline_close, pipeline_open, pipeline_stage_set

    pipeline_check(pipeline)
    plan = pipeline.to_dict()
    record = pipeline_open(
        project=project, user=user, name=pipeline.name, spec=plan, scheduler=scheduler_url or "local"
    )
    for stage in pipeline.stages.values():
        target = StageTarget(stage.identity)
        if target.exists():
            pipeline_stage_set(
                pipeline_id=record.id, name=stage.name, state=State.SKIPPED, result=target.read()["result"]
            )
    context = json.dumps(
        {"user": user.id, "project": project.id, "pipeline": record.id, "local": local, "poll": poll_seconds}
    )
    plan_text = json.dumps(plan)
    tasks = [task_for(pipeline, name, plan_text, context) for name in pipeline.stages]
    options: dict = {"workers": max(1, workers), "log_level": "INFO" if verbose else "CRITICAL"}
    if scheduler_url:
        options["scheduler_url"] = scheduler_url
    else:
        options["local_scheduler"] = True
    if workers > 1:
        connections.close_all()  # forked Luigi workers open their own (tasks.forked_child_connections_drop)
    try:
        result = luigi.build(tasks, detailed_summary=True, **options)
        status = result.status
    except Exception as exc:  # the scheduler went away mid-run
        status = None
        error = (
            f"the scheduler stopped answering ({type(exc).__name__})" if scheduler_url else failure_line(exc)
        )
    else:
        error = ""
    ok = status in (luigi.LuigiStatusCode.SUCCESS, luigi.LuigiStatusCode.SUCCESS_WITH_RETRY)
    rows = list(PipelineStage.objects.filter(pipeline_id=record.id).select_related("run"))
    failures = [f"stage '{r.name}' ({r.kind}) failed: {r.error}" for r in rows if r.state == State.FAILED]
    if not ok and not failures:
        reason = error or (status.value[1] if status is not None else "unknown")
        failures = [f"pipeline '{pipeline.name}' did not finish: {reason}"]
    pipeline_close(pipeline_id=record.id, succeeded=ok, error="; ".join(failures))
    rows = list(PipelineStage.objects.filter(pipeline_id=record.id).select_related("run"))
    stages = [
        {
            "name": r.name,
            "kind": r.kind,
            "state": r.state,
            "identity": r.identity,
            "run": r.run_id,
            "error": r.error,
        }
        for r in rows
    ]
    return Outcome(
        pipeline_id=record.id, exit_code=0 if ok else EXIT_FAILED, stages=stages, failures=failures
    )


def pipeline_status(pipeline: Pipeline) -> list[dict]:
    """Each stage's identity and whether its output is there (``layerlab pipeline show``)."""
    return [
        {
            "name": s.name,
            "kind": s.kind,
            "identity": s.identity,
            "requires": s.requires,
            "done": StageTarget(s.identity).exists(),
        }
        for s in pipeline.stages.values()
    ]
