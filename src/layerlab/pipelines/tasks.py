"""The Luigi tasks: one class per stage kind, identified by the stage's name and identity, one target each.

The whole checked pipeline and who runs it travel as hidden, insignificant parameters, so a task's
id (what the scheduler and its visualiser show) depends on the stage's identity only.
"""

from __future__ import annotations

import json
import os

import luigi
from luigi.parameter import ParameterVisibility

from layerlab.core.errors import LayerlabError
from layerlab.pipelines.spec import Pipeline
from layerlab.pipelines.targets import StageTarget

# The process that calls luigi.build; ``--workers 2`` forks a Luigi worker process per stage.
PARENT_PID = os.getpid()
_INHERITED: list = []  # the parent's database connections, kept (never closed) in a forked child


def forked_child_connections_drop() -> None:
    """In a forked Luigi worker: leave the parent's database connections alone, open fresh ones.

    Closing an inherited PostgreSQL connection would end the parent's session over the shared
    socket; kept referenced, it is never closed (the child ends with ``os._exit``).
    """
    if os.getpid() == PARENT_PID:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _INHERITED.append(connection.connection)
            connection.connection = None


def failure_line(exc: BaseException) -> str:
    """Why a stage failed, as one line without a traceback."""
    if isinstance(exc, LayerlabError):
        return exc.one_line()  # written for users: no server paths
    # Anything else may name server files; the dashboard shows this line to the project's viewers.
    return f"unexpected {type(exc).__name__}; run with --verbose for Luigi's log and the traceback"


class StageTask(luigi.Task):
    """One stage of a pipeline; subclasses only name the kind (the visualiser shows it)."""

    task_namespace = "layerlab"

    stage = luigi.Parameter(description="the stage's name in the pipeline file")
    identity = luigi.Parameter(
        description="hash of the stage's resolved config and of its inputs' identities"
    )
    plan = luigi.Parameter(significant=False, visibility=ParameterVisibility.HIDDEN, default="{}")
    context = luigi.Parameter(significant=False, visibility=ParameterVisibility.HIDDEN, default="{}")

    # No ``retry_count = 0``: luigid would disable the task after one failure (for a day), so the
    # run after a fix would not start it. A failure fails this pipeline run (the worker does not stay
    # alive to retry); the next run adds the task again as pending and it starts at once.

    @property
    def pipeline(self) -> Pipeline:
        return Pipeline.from_dict(json.loads(self.plan))

    @property
    def spec(self):
        return self.pipeline.stages[self.stage]

    def requires(self):
        pipeline = self.pipeline
        return [task_for(pipeline, name, self.plan, self.context) for name in self.spec.requires]

    def output(self) -> StageTarget:
        return StageTarget(self.identity)

    def run(self) -> None:
        from layerlab.pipelines import runner

        forked_child_connections_drop()
        runner.stage_run(self)

    def on_failure(self, exception: BaseException) -> str:
        # what luigid shows for the failed task: one line, not the traceback
        return failure_line(exception)


class Dataset(StageTask):
    """Register a data source in the lab."""


class Train(StageTask):
    """Train a run on the lab's queue."""


class Finetune(StageTask):
    """Fine-tune a new run from an earlier stage's run."""


class Evaluate(StageTask):
    """Evaluate a stage's run on other data."""


class Export(StageTask):
    """Export a stage's run (onnx, torchscript, safetensors)."""


class Sweep(StageTask):
    """A hyper-parameter sweep."""


class Report(StageTask):
    """A summary of stages' results, in storage and the journal."""


CLASSES: dict[str, type[StageTask]] = {
    "dataset": Dataset,
    "train": Train,
    "finetune": Finetune,
    "evaluate": Evaluate,
    "export": Export,
    "sweep": Sweep,
    "report": Report,
}


def task_for(pipeline: Pipeline, name: str, plan: str, context: str) -> StageTask:
    stage = pipeline.stages[name]
    return CLASSES[stage.kind](stage=name, identity=stage.identity, plan=plan, context=context)
