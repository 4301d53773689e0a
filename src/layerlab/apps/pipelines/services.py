"""Writes on pipelines: open the record of a pipeline run, then set each stage's state as Luigi runs it."""

from __future__ import annotations

from django.db import transaction

from layerlab.apps.pipelines.models import Pipeline, PipelineStage, State
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import Run


@transaction.atomic
def pipeline_open(*, project: Project, user, name: str, spec: dict, scheduler: str = "local") -> Pipeline:
    """The pipeline record for a (checked) pipeline about to run: created, or updated to this spec.

    Stages no longer in the file are dropped; every stage starts ``pending``; what each stage
    produced before stays linked until the stage runs again.
    """
    pipeline, _ = Pipeline.objects.select_for_update().get_or_create(
        project=project, name=name, defaults={"created_by": user}
    )
    pipeline.spec = spec
    pipeline.state = State.RUNNING
    pipeline.error = ""
    pipeline.scheduler = scheduler
    pipeline.save()
    stages = spec.get("stages", {})
    pipeline.stages.exclude(name__in=list(stages)).delete()
    for position, (stage_name, stage) in enumerate(stages.items()):
        row, created = PipelineStage.objects.get_or_create(
            pipeline=pipeline,
            name=stage_name,
            defaults={"kind": stage["kind"], "identity": stage["identity"]},
        )
        if not created and row.identity != stage["identity"]:
            row.result, row.run = {}, None  # another stage now: its old outputs are not its outputs
        row.kind, row.identity, row.position = stage["kind"], stage["identity"], position
        row.requires = [*(v for v in _inputs(stage)), *stage.get("after", [])]
        row.state, row.error = State.PENDING, ""
        row.save()
    return pipeline


def _inputs(stage: dict):
    for value in stage.get("inputs", {}).values():
        yield from [value] if isinstance(value, str) else value


def pipeline_stage_set(
    *, pipeline_id: int, name: str, state: str, result: dict | None = None, error: str = ""
) -> None:
    """Record one stage's state (and, when done, what it produced: its run, metrics, files)."""
    changes: dict = {"state": state, "error": error[:2000]}
    if result is not None:
        changes["result"] = result
        run_id = result.get("run")
        changes["run"] = Run.objects.filter(id=run_id).first() if run_id else None
    for row in PipelineStage.objects.filter(pipeline_id=pipeline_id, name=name):
        for key, value in changes.items():
            setattr(row, key, value)
        row.save()


def pipeline_close(*, pipeline_id: int, succeeded: bool, error: str = "") -> None:
    """The pipeline run ended: stages never reached are ``not_run``; the pipeline done or failed."""
    PipelineStage.objects.filter(pipeline_id=pipeline_id, state__in=[State.PENDING, State.RUNNING]).update(
        state=State.NOT_RUN
    )
    pipeline = Pipeline.objects.get(id=pipeline_id)
    pipeline.state = State.DONE if succeeded else State.FAILED
    pipeline.error = error[:2000]
    pipeline.save(update_fields=["state", "error", "updated_at"])
