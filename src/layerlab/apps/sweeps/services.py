"""Writes on sweeps: create (study + first trials), ask a trial (an ordinary queued run), tell a finished
trial to the study exactly once, cancel, delete; the pruning callback a trial's run trains with.

Exactly once: a trial moves out of ``running`` by one conditional update, in the transaction that
tells Optuna (``skip_if_finished``, so a tell whose commit was lost is not told twice). Trials are
asked by ``sweep_fill`` under the sweep row's lock (SQLite: the IMMEDIATE write lock), so many workers
finishing trials at once never ask more than ``trials``.
"""

from __future__ import annotations

import logging
import math
import uuid

from django.db import transaction
from django.db.models import F, Max, Min
from django.utils import timezone

from layerlab.apps.projects.models import Project
from layerlab.apps.runs.models import MetricPoint, Run
from layerlab.apps.runs.services import config_dataset, config_resolve, run_cancel, run_create
from layerlab.apps.sweeps import study as studies
from layerlab.apps.sweeps.models import Sweep, SweepTrial
from layerlab.apps.sweeps.spec import (
    config_with,
    distributions,
    keys_check,
    spec_from_dict,
    spec_from_mapping,
    split_config,
)
from layerlab.core.configtree import apply_override, suggest
from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.train.callbacks import Callback
from layerlab.train.config import parse_scalar

log = logging.getLogger("layerlab.sweeps")

# The per-epoch metrics of the engine (``Trainer.fit_epoch``'s row) a sweep may optimize.
METRICS = ("val_accuracy", "val_loss", "train_accuracy", "train_loss")


class SweepError(LayerlabError):
    """A sweep action is not possible in the sweep's state."""

    kind = "sweep_error"


def sweep_create(
    *,
    project: Project,
    user,
    config: dict,
    sweep: dict | None = None,
    name: str = "",
    overrides: list[str] | tuple[str, ...] = (),
) -> Sweep:
    """Check the sweep and its base config, create its Optuna study and queue its first trials.

    Args:
        project: where the sweep and its trial runs live (the caller checked the editor role).
        config: the experiment mapping, with a ``sweep:`` section unless ``sweep`` is given.
        sweep: the sweep section given apart (its own file).
        overrides: ``key.path=value`` edits of the base config, as ``--set``.

    Raises ConfigError (one line naming the key) before anything is created; a trial config the engine
    refuses removes the study and the sweep again (no half-created sweep).
    """
    base, section = split_config(config, sweep)
    spec = spec_from_mapping(section)
    if spec.metric not in METRICS:
        close = suggest(spec.metric, METRICS)
        raise ConfigError(
            f"unknown metric '{spec.metric}'",
            hint=f"did you mean '{close}'?" if close else f"use one of {', '.join(METRICS)}",
            where="sweep.metric",
        )
    for assignment in overrides:
        apply_override(base, assignment, parse_scalar)
    dataset = config_dataset(base, user=user, project=project, dataset=None)
    resolved = config_resolve(base, network=None, dataset=dataset)
    keys_check(spec, resolved)
    if spec.method == "grid":
        spec.trials = min(spec.trials, spec.grid_size())  # more would repeat points
    if not spec.warmup:
        spec.warmup = max(1, int(resolved["train"]["epochs"]) // 9)
    study_name = f"layerlab-{uuid.uuid4().hex}"
    studies.study_create(name=study_name, goal=spec.goal)
    try:
        with transaction.atomic():
            row = Sweep.objects.create(
                project=project,
                name=(name or str(resolved.get("name") or "") or "sweep")[:200],
                study_name=study_name,
                spec=spec.to_dict(),
                config=base,
                method=spec.method,
                metric=spec.metric,
                goal=spec.goal,
                trials=spec.trials,
                parallel=spec.parallel,
                pruner=spec.pruner,
                created_by=user,
            )
            sweep_fill(sweep=row)
    except BaseException:
        studies.study_delete(study_name)
        raise
    return row


def sweep_fill(*, sweep: Sweep) -> list[SweepTrial]:
    """Ask trials until ``parallel`` are running or ``trials`` were asked; returns the new ones."""
    asked = []
    with transaction.atomic():
        # The lock first (no read before it): concurrent fills of one sweep take turns.
        Sweep.objects.filter(id=sweep.id).update(importances_told=F("importances_told"))
        sweep = Sweep.objects.select_for_update().get(id=sweep.id)
        if sweep.status != Sweep.Status.RUNNING:
            return asked
        rows = SweepTrial.objects.filter(sweep=sweep)
        total, running = rows.count(), rows.filter(state=SweepTrial.State.RUNNING).count()
        while total < sweep.trials and running < sweep.parallel:
            asked.append(sweep_trial_ask(sweep=sweep, number_hint=total))
            total += 1
            running += 1
        if total >= sweep.trials and running == 0:
            sweep_finish(sweep)
    return asked


def sweep_trial_ask(*, sweep: Sweep, number_hint: int = 0) -> SweepTrial:
    """One trial: Optuna's next point as config values, an ordinary queued run of the sweep's project."""
    import optuna

    spec = spec_from_dict(sweep.spec)
    study = studies.study_load(sweep, seed_offset=number_hint)
    trial = study.ask(distributions(spec))
    try:
        with transaction.atomic():
            run = run_create(
                project=sweep.project,
                user=sweep.created_by,
                config=config_with(sweep.config, trial.params),
                name=f"{sweep.name[:180]} #{trial.number}",
                tags=["sweep"],
            )
            return SweepTrial.objects.create(
                sweep=sweep, number=trial.number, trial_id=trial._trial_id, run=run, params=trial.params
            )
    except BaseException:  # the point is not a trial of this sweep: told failed, never asked again
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        raise


def trial_value(trial: SweepTrial, run: Run) -> float | None:
    """The trial's objective: the best per-epoch value of the sweep's metric in its run."""
    points = MetricPoint.objects.filter(run=run, name=trial.sweep.metric)
    agg = points.aggregate(v=Max("value") if trial.sweep.goal == "maximize" else Min("value"))["v"]
    return float(agg) if agg is not None and math.isfinite(agg) else None


def sweep_trial_tell(*, trial: SweepTrial) -> bool:
    """Tell the study how a finished trial run ended, exactly once; False when already told (or the run
    has not finished)."""
    import optuna

    States = optuna.trial.TrialState  # noqa: N806
    run = trial.run
    if run is None:
        state, value = SweepTrial.State.FAILED, None
    elif not run.is_finished:
        return False
    elif run.status == Run.Status.PRUNED:
        state, value = SweepTrial.State.PRUNED, trial_value(trial, run)
    elif run.status == Run.Status.SUCCEEDED:
        value = trial_value(trial, run)
        state = SweepTrial.State.COMPLETE if value is not None else SweepTrial.State.FAILED
    else:
        state, value = SweepTrial.State.FAILED, None
    epochs = run.epoch if run is not None else 0
    with transaction.atomic():
        moved = SweepTrial.objects.filter(id=trial.id, state=SweepTrial.State.RUNNING).update(
            state=state, value=value, epochs=epochs, told_at=timezone.now()
        )
        if not moved:
            return False
        study = studies.study_load(trial.sweep)
        if state == SweepTrial.State.COMPLETE:
            study.tell(trial.number, value, skip_if_finished=True)
        elif state == SweepTrial.State.PRUNED:
            study.tell(trial.number, state=States.PRUNED, skip_if_finished=True)
        else:
            study.tell(trial.number, state=States.FAIL, skip_if_finished=True)
    return True


def sweep_reconcile(*, sweep: Sweep) -> int:
    """Tell every running trial whose run has finished (a worker killed between finishing a run and
    telling it), then ask what remains; returns how many were told."""
    told = 0
    pending = SweepTrial.objects.filter(sweep=sweep, state=SweepTrial.State.RUNNING).select_related(
        "run", "sweep"
    )
    for trial in pending:
        if trial.run is None or trial.run.is_finished:
            told += sweep_trial_tell(trial=trial)
    if sweep.status == Sweep.Status.RUNNING:
        sweep_fill(sweep=sweep)
    return told


def sweep_trial_finished(run: Run) -> None:
    """The runs app's finished-run hook: tell the trial (if the run is one) and ask the next ones."""
    trial = SweepTrial.objects.filter(run_id=run.id).select_related("sweep", "run").first()
    if trial is None:
        return
    try:
        sweep_reconcile(sweep=trial.sweep)
    except Exception:  # the run stays finished; the next finish, GET or sweep_wait tells it
        log.exception(
            "sweep %s: telling run %s's trial failed; it is told at the next reconcile",
            trial.sweep_id,
            run.id,
        )


def sweep_finish(sweep: Sweep) -> None:
    Sweep.objects.filter(id=sweep.id, status=Sweep.Status.RUNNING).update(
        status=Sweep.Status.FINISHED, finished_at=timezone.now()
    )


def sweep_cancel(*, sweep: Sweep) -> Sweep:
    """Ask no more trials and cancel the running ones (they are told failed as they end)."""
    with transaction.atomic():
        if sweep.status != Sweep.Status.RUNNING:
            raise SweepError(f"sweep {sweep.id} is {sweep.status}")
        Sweep.objects.filter(id=sweep.id).update(status=Sweep.Status.CANCELLED, finished_at=timezone.now())
        for trial in SweepTrial.objects.filter(sweep=sweep, state=SweepTrial.State.RUNNING).select_related(
            "run"
        ):
            if trial.run is not None and not trial.run.is_finished:
                run_cancel(run=trial.run)
    sweep.refresh_from_db()
    return sweep


def sweep_delete(*, sweep: Sweep) -> None:
    """Delete a finished sweep and its study (its trial runs stay, as ordinary runs)."""
    if sweep.status == Sweep.Status.RUNNING:
        raise SweepError(f"sweep {sweep.id} is running", hint="cancel it first")
    name = sweep.study_name
    sweep.delete()
    studies.study_delete(name)


def sweep_importances(*, sweep: Sweep) -> dict[str, float]:
    """Optuna's parameter importances (its default evaluator), cached until another trial is told."""
    import optuna

    told = SweepTrial.objects.filter(sweep=sweep, state=SweepTrial.State.COMPLETE).count()
    if sweep.importances_told == told and (sweep.importances or told < 2):
        return dict(sweep.importances)
    if told < 2:
        return {}
    try:
        values = optuna.importance.get_param_importances(studies.study_load(sweep))
    except (RuntimeError, ValueError) as exc:  # e.g. every complete trial has the same value
        log.info("sweep %s: no importances (%s)", sweep.id, exc)
        values = {}
    values = {k: float(v) for k, v in values.items()}
    Sweep.objects.filter(id=sweep.id).update(importances=values, importances_told=told)
    return values


def sweep_wait(*, sweep: Sweep, timeout: float | None = None, poll: float = 1.0) -> Sweep:
    """Block until the sweep is no longer running (reconciling on the way); for pipelines and scripts."""
    import time

    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        sweep.refresh_from_db()
        if sweep.status != Sweep.Status.RUNNING:
            return sweep
        sweep_reconcile(sweep=sweep)
        if deadline is not None and time.monotonic() >= deadline:
            raise SweepError(f"sweep {sweep.id} did not finish within {timeout:g} s")
        time.sleep(poll)


class TrialPruner(Callback):
    """Reports a trial run's per-epoch metric to its study (the epoch is the step) and stops the run
    cleanly when the study's pruner says so; the run then ends ``pruned``."""

    def __init__(self, trial: SweepTrial):
        self.sweep = trial.sweep
        self.trial_id = trial.trial_id
        self.metric = trial.sweep.metric
        self.pruned = False
        self._trial = None

    @property
    def state_key(self) -> str:
        return "sweep-pruner"

    def on_epoch_end(self, trainer, epoch: int, metrics: dict) -> None:
        import optuna

        value = metrics.get(self.metric)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return
        try:
            if self._trial is None:
                self._trial = optuna.trial.Trial(studies.study_load(self.sweep), self.trial_id)
            self._trial.report(float(value), int(epoch))
            self.pruned = self._trial.should_prune()
        except Exception as exc:  # the study out of reach: train on, unpruned
            log.warning("sweep %s: reporting epoch %s failed: %s", self.sweep.id, epoch, exc)

    def should_stop(self, trainer=None) -> bool:
        return self.pruned


def sweep_trial_callbacks(run: Run) -> list:
    """The runs app's callback factory: a pruner for a trial run of a sweep with one."""
    trial = SweepTrial.objects.filter(run_id=run.id).select_related("sweep").first()
    if trial is None or trial.sweep.pruner == "none":
        return []
    return [TrialPruner(trial)]
