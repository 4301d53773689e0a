"""Recording an experiment that ``layerlab experiment run`` trains on this machine, in the lab's store.

``research.local.run_local`` drives the experiment (its files under the experiment's directory); this
recorder hears its events: each trial becomes a run of origin ``cli`` (recorded live by a
``LocalRunRecorder`` when it trains in this process, closed with its summary and metrics when it
trained in a pool process), the experiment a row of origin ``cli`` with its trial rows, and at the
end the report, its PNGs and the journal entry. A store failure never stops the experiment: the
first one is said once, then nothing more is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from layerlab.apps.accounts.services import user_get_or_create_unclaimed
from layerlab.apps.experiments.models import Experiment, ExperimentTrial
from layerlab.apps.experiments.services import (
    TAG,
    experiment_finish_local,
    experiment_open_local,
    experiment_trial_close,
    experiment_trial_record,
)
from layerlab.apps.runs.execution import json_safe, worker_identity
from layerlab.apps.runs.local import LocalRunRecorder, local_project
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.recorder import metric_points_store
from layerlab.apps.runs.services import run_finish_local, run_start_local
from layerlab.core.errors import ConfigError
from layerlab.research.base import Trial
from layerlab.research.spec import ExperimentSpec
from layerlab.train import rundir

RUN_STATUS = {"completed": Run.Status.SUCCEEDED, "cancelled": Run.Status.CANCELLED}


class LocalExperimentRecorder:
    """``on_event`` and ``callbacks_for`` of ``run_local``, writing the experiment into the store.

    Args:
        spec: the checked experiment.
        out_dir: its directory (a rerun into the same directory continues the same row).
        username, project: the owner and project (a new project name creates it).
        warn: prints one line (stderr).
    """

    def __init__(
        self, spec: ExperimentSpec, out_dir: Path, *, username: str, project: str, warn: Callable[[str], None]
    ):
        self.spec, self.warn, self.broken = spec, warn, False
        user = user_get_or_create_unclaimed(username=username)
        self.user = user
        self.project = local_project(user=user, ref=project)  # a ConfigError here stops the command
        self.experiment: Experiment = experiment_open_local(
            project=self.project, user=user, spec=spec, out_dir=str(Path(out_dir).resolve())
        )
        self.runs: dict[str, int] = {}
        self.recorders: dict[str, LocalRunRecorder] = {}
        self.trials: dict[str, Trial] = {}

    @property
    def experiment_id(self) -> int:
        return self.experiment.id

    def guarded(self, fn, *args, **kwargs):
        if self.broken:
            return None
        try:
            return fn(*args, **kwargs)
        except ConfigError:
            raise
        except Exception as exc:  # recording must never cost the experiment
            self.broken = True
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.warn(f"stopped recording experiment {self.experiment.id} ({first}); the experiment goes on")
            return None

    # research.local hooks

    def callbacks_for(self, trial: Trial, run_dir: Path, resumed: bool) -> list:
        """The live recorder of a training trial in this process (opened at ``trial_started``)."""
        self.trials[trial.key] = trial
        run_id = self.runs.get(trial.key)
        if run_id is None or trial.probe is not None or self.broken:
            return []
        recorder = LocalRunRecorder(run_id, self.warn)
        self.recorders[trial.key] = recorder
        return [recorder]

    def on_event(self, event: dict) -> None:
        kind = event.get("event")
        if kind == "trial_started":
            self.guarded(self._started, event)
        elif kind == "trial_finished":
            self.guarded(self._finished, event)
        elif kind == "trial_kept":
            self.guarded(self._kept, event)

    def _started(self, event: dict) -> None:
        key, run_dir = event["key"], Path(event["run_dir"])
        config = event.get("config") or {}
        run = run_start_local(
            project=self.project,
            user=self.user,
            name=f"{self.experiment.name} {key}"[:200],
            config=json_safe(config),
            run_dir=run_dir,
            resume=bool(event.get("resumed")),
            worker=worker_identity(),
            tags=[TAG, f"{TAG}:{self.experiment.id}"],
        )
        self.runs[key] = run.id
        experiment_trial_record(
            experiment=self.experiment,
            key=key,
            labels=event.get("labels") or {},
            probe=event.get("probe"),
            run=run,
            status=ExperimentTrial.Status.RUNNING,
        )

    def _finished(self, event: dict) -> None:
        key, status = event["key"], event["status"]
        summary = json_safe(event.get("summary") or {})
        error = str(summary.get("error") or "")
        run_status = RUN_STATUS.get(status, Run.Status.FAILED)
        recorder = self.recorders.pop(key, None)
        run_id = self.runs.get(key)
        if recorder is not None:
            recorder.finish(run_status, summary, error)
        elif run_id is not None:
            for row in rundir.read_metrics(Path(event["run_dir"])) if event.get("run_dir") else ():
                if isinstance(row.get("epoch"), int):
                    metric_points_store(run_id, row["epoch"], row)
            run_finish_local(run_id=run_id, status=run_status, summary=summary, error=error)
        else:  # skipped: no run
            experiment_trial_record(
                experiment=self.experiment, key=key, labels={}, probe=None, run=None, status=status
            )
        if status in ExperimentTrial.Status.values:
            experiment_trial_close(
                experiment=self.experiment,
                key=key,
                status=status,
                seconds=event.get("seconds") or 0.0,
                error=error,
            )

    def _kept(self, event: dict) -> None:
        """A trial an earlier call finished: its row and run are closed now if that call could not say
        so (killed, or the store away), never recorded twice."""
        key = event["key"]
        row = ExperimentTrial.objects.filter(experiment=self.experiment, key=key).first()
        if row is not None and row.status == event["status"] and row.finished_at is not None:
            return
        if row is not None and row.run_id is not None:
            self.runs[key] = row.run_id
        self._finished(event)

    # the end

    def finish(self, document: dict | None, error: str = "") -> None:
        """Close the experiment: finished with its report, or cancelled (open trial runs closed too)."""
        for key, run_id in list(self.runs.items()):
            if document is None and key in self.recorders:
                self.guarded(self.recorders.pop(key).finish, Run.Status.CANCELLED, None, error)
            elif document is None:
                self.guarded(_close_if_running, run_id, error)
        self.broken = False  # the store may be back: the report is worth one more try
        self.guarded(experiment_finish_local, experiment=self.experiment, document=document, error=error)


def _close_if_running(run_id: int, error: str) -> None:
    if Run.objects.filter(id=run_id, status=Run.Status.RUNNING).exists():
        run_finish_local(run_id=run_id, status=Run.Status.CANCELLED, error=error)
