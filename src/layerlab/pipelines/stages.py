"""What each stage kind does, through the lab's services in this process; each returns its result dict.

Stages that train create a run on the lab's queue and wait for a worker (any worker on any host
sharing the database) to finish it; ``local`` trains it in this process instead.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass

from layerlab.core.errors import ConfigError, LayerlabError


class PipelineError(LayerlabError):
    """A stage could not do its work (its run failed, timed out, a kind is not available)."""

    kind = "pipeline_error"


@dataclass
class Lab:
    """Who and where: the user, the project, the pipeline record, and how runs are trained."""

    user: object
    project: object
    pipeline_id: int
    pipeline_name: str
    local: bool = False
    poll_seconds: float = 1.0
    timeout_seconds: float = 24 * 3600


def run_wait(lab: Lab, run_id: int, *, timeout: float | None = None):
    """The run once finished: trained here (``local``) or by a worker; a failed run is an error."""
    from layerlab.apps.runs.models import Run

    if lab.local:
        from layerlab.apps.runs.execution import run_execute

        run_execute(run_id=run_id)
    limit = timeout or lab.timeout_seconds
    deadline = time.monotonic() + limit
    while True:
        run = Run.objects.filter(id=run_id).first()
        if run is None:
            raise PipelineError(f"run {run_id} was deleted while the pipeline waited for it")
        if run.is_finished:
            break
        if time.monotonic() > deadline:
            raise PipelineError(
                f"run {run_id} did not finish within {limit:g} s (status {run.status})",
                hint="check that a worker is running (layerlab worker), or give the stage a longer 'timeout'",
            )
        time.sleep(lab.poll_seconds)
    if run.status != Run.Status.SUCCEEDED:
        reason = (run.error or "").strip().splitlines()
        raise PipelineError(f"run {run_id} {run.status}" + (f": {reason[0]}" if reason else ""))
    return run


def run_result(run) -> dict:
    summary = run.summary or {}
    metrics = {k: v for k, v in summary.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {"run": run.id, "run_name": run.name, "metrics": metrics}


def input_run(inputs: dict, field: str):
    from layerlab.apps.runs.models import Run

    run_id = inputs[field].get("run")
    run = Run.objects.filter(id=run_id).first()
    if run is None:
        raise PipelineError(f"the run of input '{field}' is gone", hint="run the pipeline again")
    return run


def input_dataset(inputs: dict, field: str = "dataset"):
    from layerlab.apps.datasets.models import Dataset

    if field not in inputs:
        return None
    dataset = Dataset.objects.filter(id=inputs[field].get("dataset")).first()
    if dataset is None:
        raise PipelineError(f"the dataset of input '{field}' is gone", hint="run the pipeline again")
    return dataset


def stage_dataset(lab: Lab, stage, inputs: dict) -> dict:
    from layerlab.apps.datasets.models import Dataset
    from layerlab.apps.datasets.services import dataset_register

    name = stage.options.get("name") or f"{lab.pipeline_name}-{stage.name}-{stage.identity[:8]}"
    data = stage.options["data"]
    dataset = Dataset.objects.filter(project=lab.project, name=name).first()
    if dataset is None or dataset.data != data:
        if dataset is not None:
            raise PipelineError(
                f"project '{lab.project.name}' already has another dataset named '{name}'",
                where=f"stages.{stage.name}.name",
            )
        dataset = dataset_register(project=lab.project, user=lab.user, name=name, data=data)
    return {"dataset": dataset.id, "dataset_name": dataset.name}


def stage_train(lab: Lab, stage, inputs: dict) -> dict:
    from layerlab.apps.runs.services import run_create

    run = run_create(
        project=lab.project,
        user=lab.user,
        config=copy.deepcopy(stage.options.get("config") or {}),
        name=stage.options.get("name") or f"{lab.pipeline_name}/{stage.name}",
        dataset=input_dataset(inputs),
        overrides=stage.options.get("overrides", []),
    )
    return run_result(run_wait(lab, run.id, timeout=stage.options.get("timeout")))


def stage_finetune(lab: Lab, stage, inputs: dict) -> dict:
    from layerlab.apps.runs.services import run_finetune

    config = copy.deepcopy(stage.options.get("config") or {})
    dataset = input_dataset(inputs)
    if dataset is not None:
        config["data"] = copy.deepcopy(dataset.data)
    run = run_finetune(
        run=input_run(inputs, "from"),
        user=lab.user,
        config=config,
        overrides=stage.options.get("overrides", []),
        name=stage.options.get("name") or f"{lab.pipeline_name}/{stage.name}",
    )
    return run_result(run_wait(lab, run.id, timeout=stage.options.get("timeout")))


def stage_evaluate(lab: Lab, stage, inputs: dict) -> dict:
    from layerlab.apps.datasets.access import config_data_check
    from layerlab.apps.datasets.services import data_section_check
    from layerlab.apps.runs.files import run_checkpoint_local
    from layerlab.core.configtree import from_mapping
    from layerlab.data.config import DataConfig
    from layerlab.inference.evaluate import evaluate_run

    data = stage.options["data"]
    data_section_check(data)
    config_data_check(data=data, user=lab.user, project=lab.project)
    run = input_run(inputs, "run")
    report = evaluate_run(run_checkpoint_local(run=run), from_mapping(DataConfig, data, "data"), device="cpu")
    return {
        "run": run.id,
        "run_name": run.name,
        "metrics": {"accuracy": report["accuracy"], "loss": report["loss"], "n": report["n"]},
        "per_class_accuracy": report.get("per_class_accuracy") or {},
    }


def stage_export(lab: Lab, stage, inputs: dict) -> dict:
    from layerlab.apps.runs.services import run_export

    run = input_run(inputs, "run")
    path = run_export(run=run, fmt=stage.options["format"])
    return {
        "run": run.id,
        "run_name": run.name,
        "format": stage.options["format"],
        "file": f"export/{path.name}",
    }


def sweep_available() -> bool:
    """Whether the lab has the sweeps service a sweep stage needs (installed and importable)."""
    try:
        from django.apps import apps

        if not apps.is_installed("layerlab.apps.sweeps"):
            return False
        from layerlab.apps.sweeps import services as sweeps
    except Exception:  # not there, or not ready in this lab
        return False
    return hasattr(sweeps, "sweep_create") and hasattr(sweeps, "sweep_wait")


def sweep_run_local(lab: Lab, sweep, timeout: float) -> None:
    """Train the sweep's queued trial runs in this process until the sweep is over (``--local``)."""
    from layerlab.apps.runs.execution import run_execute
    from layerlab.apps.runs.models import Run
    from layerlab.apps.sweeps.models import Sweep
    from layerlab.apps.sweeps.services import sweep_reconcile

    deadline = time.monotonic() + timeout
    while True:
        sweep.refresh_from_db()
        if sweep.status != Sweep.Status.RUNNING:
            return
        queued = list(
            Run.objects.filter(sweep_trial__sweep=sweep, status=Run.Status.QUEUED).values_list(
                "id", flat=True
            )
        )
        for run_id in queued:
            run_execute(run_id=run_id)
        if not queued:
            sweep_reconcile(sweep=sweep)
            if time.monotonic() > deadline:
                raise PipelineError(f"sweep {sweep.id} did not finish within {timeout:g} s")
            time.sleep(lab.poll_seconds)


def stage_sweep(lab: Lab, stage, inputs: dict) -> dict:
    """A sweep (apps/sweeps: Optuna over the lab's queue); its result is the best trial's run."""
    from layerlab.apps.sweeps.models import Sweep
    from layerlab.apps.sweeps.selectors import sweep_best
    from layerlab.apps.sweeps.services import sweep_create, sweep_wait

    config = copy.deepcopy(stage.options.get("config") or {})
    dataset = input_dataset(inputs)
    if dataset is not None:
        config["data"] = {"dataset": dataset.id}
    sweep = sweep_create(
        project=lab.project,
        user=lab.user,
        config=config,
        sweep=stage.options.get("sweep"),
        name=stage.options.get("name") or f"{lab.pipeline_name}/{stage.name}",
        overrides=stage.options.get("overrides", []),
    )
    timeout = float(stage.options.get("timeout") or lab.timeout_seconds)
    if lab.local:
        sweep_run_local(lab, sweep, timeout)
    sweep = sweep_wait(sweep=sweep, timeout=timeout, poll=lab.poll_seconds)
    if sweep.status != Sweep.Status.FINISHED:
        raise PipelineError(f"sweep {sweep.id} {sweep.status}")
    best = sweep_best(sweep=sweep)
    if best is None or best.run_id is None:
        raise PipelineError(f"sweep {sweep.id} finished without a complete trial")
    return {
        "sweep": sweep.id,
        "run": best.run_id,
        "run_name": best.run.name,
        "metrics": {sweep.metric: best.value},
        "params": best.params,
        "trial": best.number,
    }


def report_text(title: str, inputs: dict) -> str:
    lines = [f"# {title}", "", "| stage | kind | run | metrics |", "|---|---|---|---|"]
    for name, marker in inputs.items():
        result = marker.get("result", marker)
        metrics = result.get("metrics") or {}
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
        run = f"run {result['run']}" if result.get("run") else ""
        extra = result.get("file") or result.get("dataset_name") or ""
        lines.append(f"| {name} | {marker.get('kind', '')} | {run} | {shown or extra} |")
    return "\n".join(lines) + "\n"


def stage_report(lab: Lab, stage, inputs: dict) -> dict:
    import json

    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from layerlab.apps.journal.services import entry_create

    title = stage.options.get("title") or f"Pipeline {lab.pipeline_name}: {stage.name}"
    reports = inputs.get("inputs", {})
    text = report_text(title, reports)
    base = f"pipelines/reports/{stage.identity}"
    for suffix, content in ((".md", text), (".json", json.dumps(reports, indent=2, default=str))):
        if default_storage.exists(base + suffix):
            default_storage.delete(base + suffix)
        default_storage.save(base + suffix, ContentFile(content.encode()))
    entry = entry_create(project=lab.project, author=lab.user, title=title[:200], body=text)
    return {
        "report": base + ".md",
        "entry": entry.id,
        "stages": {n: m.get("result", m) for n, m in reports.items()},
    }


ACTIONS = {
    "dataset": stage_dataset,
    "train": stage_train,
    "finetune": stage_finetune,
    "evaluate": stage_evaluate,
    "export": stage_export,
    "sweep": stage_sweep,
    "report": stage_report,
}


def stage_execute(lab: Lab, stage, inputs: dict) -> dict:
    """Do one stage's work and return its result.

    Args:
        inputs: each input field -> its stage's result (``run``, ``dataset`` ...); a list field
            (a report's ``inputs``) -> {stage name: its marker (kind, result)}.
    """
    action = ACTIONS.get(stage.kind)
    if action is None:
        raise ConfigError(f"unknown stage kind '{stage.kind}'", where=f"stages.{stage.name}.kind")
    return action(lab, stage, inputs)
