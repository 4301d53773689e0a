"""Writes on experiments: create (check, then queue the first trials), advance when a trial's run finishes,
finish (report, plots, journal entry), cancel, resume, delete; recording a CLI experiment.

The plan is research's (``layerlab.research.driver.next_step``), the same function ``layerlab experiment
run`` loops over locally. Here it is called each time a trial's run finishes (the runs app's finished-run
hook, as the sweeps app does), under the experiment row's lock, so two workers finishing trials at once
never queue a trial twice. Training trials are ordinary queued runs (tags ``experiment`` and
``experiment:<id>``) on the lab's workers; a probe trial is a run without checkpoints (origin
``client``: no worker trains it) whose work a django-tasks job does (``probes.experiment_probe_execute``).
"""

from __future__ import annotations

import logging
import time

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from layerlab.apps.datasets.access import is_superuser
from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.journal.services import entry_create
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.files import run_working_dir
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import (
    run_cancel,
    run_create,
    run_resume,
    run_start_external,
)
from layerlab.core.errors import LayerlabError
from layerlab.research.base import COMPLETED, Trial, TrialResult
from layerlab.research.driver import make_report, next_step, resolve_refs
from layerlab.research.plots import render_png_bytes
from layerlab.research.report import markdown_table, plot_file_name, report_document
from layerlab.research.spec import ExperimentSpec, parse_experiment, parse_experiment_text

log = logging.getLogger("layerlab.experiments")

TAG = "experiment"
RUN_STATUS = {  # a trial run's status -> the trial's
    Run.Status.SUCCEEDED: ExperimentTrial.Status.COMPLETED,
    Run.Status.FAILED: ExperimentTrial.Status.FAILED,
    Run.Status.CANCELLED: ExperimentTrial.Status.CANCELLED,
    Run.Status.PRUNED: ExperimentTrial.Status.FAILED,
}

RESUMABLE = (Experiment.Status.CANCELLED, Experiment.Status.FAILED)


class ExperimentError(LayerlabError):
    """An experiment action is not possible in the experiment's state."""

    kind = "experiment_error"


def experiment_spec(experiment: Experiment) -> ExperimentSpec:
    """The experiment's checked spec (its stored config already has the overrides applied)."""
    spec = parse_experiment(experiment.config)
    spec.name = experiment.name or spec.name
    return spec


def experiment_create(
    *,
    project: Project,
    user,
    config: dict | str,
    name: str = "",
    overrides: list[str] | tuple[str, ...] = (),
) -> Experiment:
    """Check the experiment and queue its first trials as runs of ``project``.

    Args:
        project: where the experiment and its trial runs live (the caller checked the editor role).
        config: the whole config mapping (or its YAML/JSON text) with an ``experiment:`` section.
        name: the experiment's name (default: the config's ``name``, else the kind's).
        overrides: ``key.path=value`` edits, as ``--set`` (``experiment.seeds=[1,2]`` too).

    Raises ConfigError (one line naming the key) before anything is created; a trial the lab refuses
    (a dataset one may not see, a lab limit) rolls the whole experiment back.
    """
    allow_paths = is_superuser(user)  # a kind's directory options, like data paths, are superusers'
    spec = (
        parse_experiment_text(config, overrides, allow_paths=allow_paths)
        if isinstance(config, str)
        else parse_experiment(config, overrides, allow_paths=allow_paths)
    )
    spec.name = (name or spec.name)[:200]
    next_step(spec, {})  # the first plan and every trial config, checked before anything is written
    with transaction.atomic():
        experiment = Experiment.objects.create(
            project=project,
            name=spec.name,
            kind=spec.kind_name,
            config=spec.config,
            options=spec.options_dict(),
            fingerprint=spec.fingerprint(),
            created_by=user,
        )
        _advance_locked(experiment, spec)
    experiment.refresh_from_db()
    return experiment


def trial_result(row: ExperimentTrial) -> TrialResult:
    """A finished trial row as research sees it (a cancelled trial counts as not completed)."""
    run = row.run
    status = COMPLETED if row.status == ExperimentTrial.Status.COMPLETED else str(row.status)
    if status == ExperimentTrial.Status.CANCELLED:
        status = "failed"
    summary = dict(run.summary or {}) if run is not None else {}
    if row.error:
        summary.setdefault("error", row.error)
    return TrialResult(
        key=row.key,
        status=status,
        summary=summary,
        run_dir=run_working_dir(run) if run is not None else None,
        seconds=row.seconds,
        run_id=str(run.id) if run is not None else None,
    )


def _sync(row: ExperimentTrial) -> bool:
    """Move a running trial row to its run's final status; whether it is finished."""
    if row.status in ExperimentTrial.FINISHED:
        return True
    run = row.run
    if run is not None and not run.is_finished:
        return False
    row.status = (
        RUN_STATUS.get(run.status, ExperimentTrial.Status.FAILED) if run else ExperimentTrial.Status.FAILED
    )
    row.error = (run.error if run is not None else "its run was deleted")[:2000]
    if run is not None and run.started_at and run.finished_at:
        row.seconds = round((run.finished_at - run.started_at).total_seconds(), 3)
    row.finished_at = timezone.now()
    row.save(update_fields=["status", "error", "seconds", "finished_at"])
    return True


def experiment_state(
    experiment: Experiment,
) -> tuple[dict[str, ExperimentTrial], dict[str, TrialResult], set[str]]:
    rows = {r.key: r for r in ExperimentTrial.objects.filter(experiment=experiment).select_related("run")}
    results, active = {}, set()
    for key, row in rows.items():
        if _sync(row):
            results[key] = trial_result(row)
        else:
            active.add(key)
    return rows, results, active


def experiment_advance(*, experiment: Experiment) -> int:
    """Record finished trials, queue the trials now ready, finish the experiment when nothing is left;
    returns how many trials were started. Safe to call any time (the finished-run hook, GET, waits)."""
    with transaction.atomic():
        experiment = _locked(experiment.id)
        if not experiment.is_running or experiment.origin != Experiment.Origin.SERVER:
            return 0
        try:
            with transaction.atomic():  # a savepoint: what a failed step wrote is undone
                return _advance_locked(experiment, experiment_spec(experiment))
        except LayerlabError as exc:  # the kind planned something the lab refuses: the experiment fails
            error = exc.one_line()
        except Exception as exc:  # a kind's bug (its report, say): the experiment fails, said in one line
            log.exception("experiment %s: advancing failed", experiment.id)
            error = f"the {experiment.kind} experiment failed: {type(exc).__name__}: {exc}".splitlines()[0]
        Experiment.objects.filter(id=experiment.id).update(
            status=Experiment.Status.FAILED, error=error[:2000], finished_at=timezone.now()
        )
        return 0


def _locked(experiment_id: int) -> Experiment:
    """The experiment's row, locked until the transaction ends. The lock is taken first, by a write
    (no read before it: SQLite has no row locks), so concurrent advances and resumes take turns."""
    Experiment.objects.filter(id=experiment_id).update(fingerprint=F("fingerprint"))
    return Experiment.objects.select_for_update().get(id=experiment_id)


def _advance_locked(experiment: Experiment, spec: ExperimentSpec) -> int:
    rows, results, active = experiment_state(experiment)
    step = next_step(spec, results, active)
    for skipped in step.skipped:
        ExperimentTrial.objects.create(
            experiment=experiment,
            key=skipped.key,
            labels=step.trials[skipped.key].labels,
            probe=step.trials[skipped.key].probe or "",
            status=ExperimentTrial.Status.SKIPPED,
            error=skipped.summary.get("error", ""),
            finished_at=timezone.now(),
        )
        results[skipped.key] = skipped
    for trial in step.ready:
        rows[trial.key] = _start_trial(experiment, trial, rows)
    if step.done:
        _finish(experiment, spec, results, step.trials)
    return len(step.ready)


def _start_trial(experiment: Experiment, trial: Trial, rows: dict[str, ExperimentTrial]) -> ExperimentTrial:
    name = f"{experiment.name} {trial.key}"[:200]
    tags = [TAG, f"{TAG}:{experiment.id}"]
    if trial.probe is None:
        config = resolve_refs(trial.config, lambda key: f"run:{rows[key].run_id}")
        run = run_create(
            project=experiment.project, user=experiment.created_by, config=config, name=name, tags=tags
        )
    else:
        config = {
            "seed": trial.seed,
            "probe": trial.probe,
            "args": trial.probe_args,
            "needs": list(trial.needs),
        }
        run = run_start_external(
            project=experiment.project,
            user=experiment.created_by,
            name=name,
            config=config,
            tags=[*tags, "probe"],
        )
    row = ExperimentTrial.objects.create(
        experiment=experiment, key=trial.key, labels=trial.labels, probe=trial.probe or "", run=run
    )
    if trial.probe is not None:
        from layerlab.apps.experiments.tasks import experiment_probe_task

        transaction.on_commit(lambda: experiment_probe_task.enqueue(row.id))
    return row


def _finish(experiment: Experiment, spec: ExperimentSpec, results: dict, trials: dict) -> None:
    """The report (document, plots in the storage), status finished, the journal entry."""
    report = make_report(spec, results)
    seconds = active_seconds(experiment)
    document = report_document(spec, report, results, trials, seconds)
    plots_store(experiment, document)
    experiment.report = document
    experiment.status = Experiment.Status.FINISHED
    experiment.finished_at = timezone.now()
    experiment.save(update_fields=["report", "status", "finished_at"])
    journal_entry(experiment)


def active_seconds(experiment: Experiment) -> float:
    """Wall seconds during which at least one of its trials' runs was executing: the time between a
    cancel and a resume is not counted (the union of the runs' started..finished intervals)."""
    intervals = sorted(
        (started, finished or timezone.now())
        for started, finished in Run.objects.filter(experiment_trial__experiment=experiment)
        .exclude(started_at=None)
        .values_list("started_at", "finished_at")
    )
    total, end = 0.0, None
    for started, finished in intervals:
        if end is not None and started < end:  # overlaps the interval before: only what extends it
            started = end
        if finished > started:
            total += (finished - started).total_seconds()
        end = finished if end is None else max(end, finished)
    return total


def plot_storage_name(experiment: Experiment, name: str) -> str:
    """``experiments/<id>/plots/<name>.png`` in the lab's storage."""
    return f"experiments/{experiment.id}/plots/{plot_file_name(name)}"


def plots_store(experiment: Experiment, document: dict) -> list[str]:
    """Render the report's plots to PNG into the storage (replacing earlier ones); their names."""
    from layerlab.research.base import Plot

    names = []
    for data in document.get("plots", []):
        name = plot_storage_name(experiment, data["name"])
        if default_storage.exists(name):
            default_storage.delete(name)
        default_storage.save(name, ContentFile(render_png_bytes(Plot(**data))))
        names.append(name)
    return names


def experiment_plot_png(*, experiment: Experiment, name: str) -> bytes | None:
    """A plot of the report as PNG bytes (None when the report has no such plot)."""
    from layerlab.research.base import Plot

    plots = {p["name"]: p for p in (experiment.report or {}).get("plots", [])}
    if name not in plots:
        return None
    stored = plot_storage_name(experiment, name)
    if default_storage.exists(stored):
        with default_storage.open(stored, "rb") as handle:
            return handle.read()
    return render_png_bytes(Plot(**plots[name]))  # stored before the file: render it again


def experiment_charts(*, experiment: Experiment) -> list[dict]:
    """The report's plots as Chart.js configs (the dashboard's interactive charts)."""
    from layerlab.research.plots import chart_config

    return [
        {"name": p["name"], "config": chart_config(p)} for p in (experiment.report or {}).get("plots", [])
    ]


def journal_entry(experiment: Experiment) -> None:
    """The journal entry of a finished experiment: findings, the table, a link to its page."""
    document = experiment.report or {}
    lines = [f"**{experiment.name}** ({experiment.kind}) {experiment.status}.", ""]
    lines += [f"- {finding}" for finding in document.get("findings", [])] + [""]
    if document.get("columns"):
        lines += markdown_table(document["columns"], document.get("rows", [])) + [""]
    counts = ", ".join(f"{n} {s}" for s, n in sorted((document.get("counts") or {}).items()))
    lines += [f"Trials: {counts or 'none'}. [The experiment's page](/experiments/{experiment.id}/)."]
    try:
        entry_create(
            project=experiment.project,
            author=None,
            title=f"Experiment {experiment.id} {experiment.status}: {experiment.name}"[:300],
            body="\n".join(lines),
        )
    except Exception:  # the experiment is finished either way
        log.exception("experiment %s: the journal entry failed", experiment.id)


def experiment_trial_finished(run: Run) -> None:
    """The runs app's finished-run hook: advance the experiment the run is a trial of."""
    row = ExperimentTrial.objects.filter(run_id=run.id).select_related("experiment", "run").first()
    if row is None or row.experiment.origin != Experiment.Origin.SERVER:
        return
    if not row.experiment.is_running:  # a run that stopped after its experiment was cancelled
        _sync(row)
        return
    try:
        experiment_advance(experiment=row.experiment)
    except Exception:  # the run stays finished; the next finish, GET or wait advances it
        log.exception("experiment %s: advancing after run %s failed", row.experiment_id, run.id)


def experiment_cancel(*, experiment: Experiment) -> Experiment:
    """Start no more trials and cancel the running ones."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(id=experiment.id)
        if not experiment.is_running:
            raise ExperimentError(f"experiment {experiment.id} is {experiment.status}")
        Experiment.objects.filter(id=experiment.id).update(
            status=Experiment.Status.CANCELLED, finished_at=timezone.now()
        )
        rows = ExperimentTrial.objects.filter(experiment=experiment, status=ExperimentTrial.Status.RUNNING)
        for row in rows.select_related("run"):
            if row.run is None or row.run.is_finished:
                continue
            if row.run.origin == Run.Origin.CLIENT:  # a probe: closed here, its job sees it
                from layerlab.apps.experiments.probes import probe_close  # (probes builds on this module)

                probe_close(row.run, Run.Status.CANCELLED, {}, "the experiment was cancelled")
            else:
                run_cancel(run=row.run)
            row.run.refresh_from_db()
            _sync(row)  # a run cancelled now shows as a cancelled trial (one still stopping: later)
    experiment.refresh_from_db()
    return experiment


def experiment_resume(*, experiment: Experiment) -> Experiment:
    """Run a cancelled or failed experiment on: its completed trials are kept, the others redone.

    A training trial that was cancelled or failed is resumed as the same run (queued again, it continues
    from its last checkpoint, and its ``run:<id>`` references stay valid); a probe or skipped trial is
    forgotten and planned again (a probe is quick; a skipped one waits for its needs). Then the plan is
    asked what is ready, as after any finished trial. A trial still running (an experiment that failed
    while it trained) goes on as it is; resuming is refused while a trial's run is still stopping
    after a cancel, as it would end cancelled.
    """
    with transaction.atomic():
        experiment = _locked(experiment.id)
        _check_resumable(experiment)
        rows, _results, active = experiment_state(experiment)
        stopping = [key for key in active if rows[key].run is not None and rows[key].run.cancel_requested]
        if stopping:  # they would end cancelled, and so count as finished
            raise ExperimentError(
                f"experiment {experiment.id} still has {len(stopping)} trial run(s) stopping",
                hint="resume it once they have stopped",
            )
        for key, row in rows.items():
            if row.status != ExperimentTrial.Status.COMPLETED and key not in active:
                _reopen_trial(row)
        Experiment.objects.filter(id=experiment.id).update(
            status=Experiment.Status.RUNNING, error="", finished_at=None
        )
    experiment_advance(experiment=experiment)
    experiment.refresh_from_db()
    return experiment


def experiment_resumable(experiment: Experiment) -> bool:
    """Whether ``experiment_resume`` may be asked (the page's Resume button)."""
    return experiment.origin == Experiment.Origin.SERVER and experiment.status in RESUMABLE


def _check_resumable(experiment: Experiment) -> None:
    if experiment.origin != Experiment.Origin.SERVER:
        raise ExperimentError(
            f"experiment {experiment.id} was run by `layerlab experiment run`",
            hint="rerun that command with the same config and --out on its machine to resume it",
        )
    if experiment.status not in RESUMABLE:
        raise ExperimentError(
            f"experiment {experiment.id} is {experiment.status}",
            hint="only cancelled or failed experiments can be resumed",
        )


def _reopen_trial(row: ExperimentTrial) -> None:
    """A not-completed trial made to run again (see ``experiment_resume``)."""
    run = row.run
    resumable = run is not None and run.status in (Run.Status.FAILED, Run.Status.CANCELLED)
    if row.probe or not resumable or run.origin != Run.Origin.SERVER:
        row.delete()  # planned again; a probe's old run stays, as an ordinary cancelled or failed run
        return
    run_resume(run=run)
    row.status = ExperimentTrial.Status.RUNNING
    row.error, row.seconds, row.finished_at = "", 0.0, None
    row.save(update_fields=["status", "error", "seconds", "finished_at"])


def experiment_delete(*, experiment: Experiment) -> None:
    """Delete a finished experiment and its plots (its trial runs stay, as ordinary runs)."""
    if experiment.is_running:
        raise ExperimentError(f"experiment {experiment.id} is running", hint="cancel it first")
    for data in (experiment.report or {}).get("plots", []):
        name = plot_storage_name(experiment, data["name"])
        if default_storage.exists(name):
            default_storage.delete(name)
    experiment.delete()


def experiment_wait(*, experiment: Experiment, timeout: float | None = None, poll: float = 1.0) -> Experiment:
    """Block until the experiment is no longer running (advancing on the way); for scripts and tests."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        experiment.refresh_from_db()
        if not experiment.is_running:
            return experiment
        experiment_advance(experiment=experiment)
        if deadline is not None and time.monotonic() >= deadline:
            raise ExperimentError(f"experiment {experiment.id} did not finish within {timeout:g} s")
        time.sleep(poll)


# Recording an experiment `layerlab experiment run` trains on one machine (research/local.py drives it).


def experiment_open_local(*, project: Project, user, spec: ExperimentSpec, out_dir: str) -> Experiment:
    """The experiment row of a CLI experiment: the one recorded for ``out_dir`` (a resumed run), else new."""
    experiment = Experiment.objects.filter(
        origin=Experiment.Origin.CLI, fingerprint=spec.fingerprint(), options__out_dir=str(out_dir)
    ).first()
    if experiment is not None:
        Experiment.objects.filter(id=experiment.id).update(
            status=Experiment.Status.RUNNING, finished_at=None, error=""
        )
        experiment.refresh_from_db()
        return experiment
    return Experiment.objects.create(
        project=project,
        name=spec.name,
        kind=spec.kind_name,
        origin=Experiment.Origin.CLI,
        config=spec.config,
        options={**spec.options_dict(), "out_dir": str(out_dir)},
        fingerprint=spec.fingerprint(),
        created_by=user,
    )


def experiment_trial_record(
    *, experiment: Experiment, key: str, labels: dict, probe: str | None, run: Run | None, status: str
) -> ExperimentTrial:
    """Create or update one trial row of a CLI experiment."""
    row, _ = ExperimentTrial.objects.update_or_create(
        experiment=experiment,
        key=key,
        defaults={"labels": labels, "probe": probe or "", "run": run, "status": status},
    )
    return row


def experiment_trial_close(
    *, experiment: Experiment, key: str, status: str, seconds: float, error: str
) -> None:
    ExperimentTrial.objects.filter(experiment=experiment, key=key).update(
        status=status, seconds=seconds, error=(error or "")[:2000], finished_at=timezone.now()
    )


def experiment_finish_local(*, experiment: Experiment, document: dict | None, error: str = "") -> Experiment:
    """Close a CLI experiment: finished with its report (plots stored, journal entry), or cancelled."""
    if document is None:
        Experiment.objects.filter(id=experiment.id).update(
            status=Experiment.Status.CANCELLED, error=error[:2000], finished_at=timezone.now()
        )
        experiment.refresh_from_db()
        return experiment
    plots_store(experiment, document)
    experiment.report = document
    experiment.status = Experiment.Status.FINISHED
    experiment.finished_at = timezone.now()
    experiment.save(update_fields=["report", "status", "finished_at"])
    journal_entry(experiment)
    return experiment
