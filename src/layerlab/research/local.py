"""Running an experiment without the lab: trials as run directories under ``out_dir/trials/``, then the report.

``run_local(config, out_dir)`` checks the whole experiment (the config and the first plan) before it
writes anything, then loops: the driver's next step, the ready trials run (in turn, or ``parallel``
at a time in separate processes, each with its share of the CPU cores), re-plan until done, report.

Resume: each finished trial leaves ``trial.json`` (key, status, seconds) beside its run files, and
is never run again; a trial directory without one was interrupted and continues from its newest
checkpoint (``train_experiment(resume=True)``). A rerun with another config into the same
``out_dir`` is refused (``experiment.json`` keeps the config's fingerprint). With ``parallel`` the pool
process writes its trial's trial.json, and the loop records every trial that finished before it
stops (Ctrl-C, a killed pool process), so a rerun redoes none of them either.
"""

from __future__ import annotations

import concurrent.futures as futures
import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from layerlab.core import runlayout
from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.research.base import COMPLETED, Report, Trial, TrialResult
from layerlab.research.driver import FINAL, make_report, next_step, plan, resolve_refs
from layerlab.research.report import report_document, write_report
from layerlab.research.spec import ExperimentSpec, parse_experiment

logger = logging.getLogger("layerlab.research")

MAX_PARALLEL = 64
Event = Callable[[dict], None]
# A factory of extra callbacks for a trial trained in this process (the CLI's store recorder).
CallbacksFor = Callable[[Trial, Path, bool], list]


class ExperimentInterrupted(LayerlabError):
    """A trial was cancelled (a callback asked to stop): the experiment stops, resumable."""

    exit_code = 130
    kind = "interrupted"


@dataclass
class Outcome:
    """What ``run_local`` did: the report, every result, the trials run or resumed in this call."""

    out_dir: Path
    report: Report
    document: dict
    results: dict[str, TrialResult]
    ran: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    seconds: float = 0.0


def trial_dir(out_dir: Path, key: str) -> Path:
    return Path(out_dir) / runlayout.TRIALS_DIR / runlayout.trial_dir_name(key)


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=2, default=str, allow_nan=False), encoding="utf-8")
    tmp.replace(path)


def read_results(out_dir: Path) -> dict[str, TrialResult]:
    """The finished trials recorded under ``out_dir/trials`` (their trial.json)."""
    folder = Path(out_dir) / runlayout.TRIALS_DIR
    if not folder.is_dir():
        return {}
    found = (read_trial(path.parent) for path in sorted(folder.glob(f"*/{runlayout.TRIAL}")))
    return {result.key: result for result in found if result is not None}


def read_trial(run_dir: Path) -> TrialResult | None:
    """The finished trial recorded in ``run_dir`` (its trial.json), None when it is not finished."""
    try:
        data = json.loads((run_dir / runlayout.TRIAL).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # absent, or a torn write: the trial is not finished
    if data.get("status") not in FINAL or not isinstance(data.get("key"), str):
        return None
    summary = _read_summary(run_dir)
    if data.get("error"):
        summary.setdefault("error", data["error"])
    return TrialResult(
        key=data["key"],
        status=data["status"],
        summary=summary,
        run_dir=run_dir,
        seconds=float(data.get("seconds") or 0.0),
        run_id=data.get("run_id"),
    )


def _read_summary(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / runlayout.SUMMARY).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def finished_event(result: TrialResult, event: str = "trial_finished") -> dict:
    """What ``on_event`` hears of a finished trial (``trial_kept``: one finished by an earlier call)."""
    return {
        "event": event,
        "key": result.key,
        "status": result.status,
        "seconds": round(result.seconds, 3),
        "summary": result.summary,
        "run_dir": str(result.run_dir) if result.run_dir else None,
    }


def record_result(out_dir: Path, result: TrialResult) -> None:
    """Write a finished trial's trial.json: from now on it is never run again."""
    _write_trial(trial_dir(out_dir, result.key), result)


def _write_trial(run_dir: Path, result: TrialResult) -> None:
    _write_json(
        run_dir / runlayout.TRIAL,
        {
            "key": result.key,
            "status": result.status,
            "seconds": round(result.seconds, 3),
            "run_id": result.run_id,
            "error": (result.summary or {}).get("error"),
        },
    )


def was_started(run_dir: Path) -> bool:
    """Whether a trial's run directory holds an interrupted run (to resume rather than start)."""
    return (run_dir / runlayout.CONFIG).is_file() or runlayout.has_checkpoints(run_dir)


def execute_trial(
    trial: Trial,
    config: dict,
    run_dir: Path,
    inputs: Mapping[str, TrialResult],
    *,
    resume: bool,
    device: str = "auto",
    cache_dir: Path | None = None,
    threads: int | None = None,
    callbacks: list | None = None,
) -> TrialResult:
    """Run one trial (training or probe) into ``run_dir``; its result. A LayerlabError is a failed trial;
    a cancelled run (a callback asked to stop) comes back ``cancelled`` and is resumed next time."""
    started = time.perf_counter()
    try:
        if trial.probe is not None:
            summary = _run_probe(trial, inputs, run_dir)
        else:
            summary = _run_training(config, run_dir, resume, device, cache_dir, threads, callbacks or [])
    except LayerlabError as exc:
        summary = {"status": "failed", "error": exc.one_line()}
        return TrialResult(trial.key, "failed", summary, run_dir, round(time.perf_counter() - started, 3))
    except Exception as exc:  # a bug or a library's error: that trial fails, the others go on
        logger.exception("trial %s failed", trial.key)
        summary = {"status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
        return TrialResult(trial.key, "failed", summary, run_dir, round(time.perf_counter() - started, 3))
    status = summary.get("status")
    status = COMPLETED if status in ("completed", "early_stopped") else (status or "failed")
    return TrialResult(trial.key, status, summary, run_dir, round(time.perf_counter() - started, 3))


def _run_training(config, run_dir, resume, device, cache_dir, threads, callbacks) -> dict:
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import train_experiment

    cfg = experiment_from_mapping(config)
    if threads and not cfg.train.num_threads:
        from layerlab.train.threads import use_threads

        use_threads(threads)
    run_dir.mkdir(parents=True, exist_ok=True)
    return train_experiment(
        cfg, run_dir, resume=resume, device=device, callbacks=callbacks, cache_dir=cache_dir
    )


def _run_probe(trial: Trial, inputs: Mapping[str, TrialResult], run_dir: Path) -> dict:
    from layerlab.research.probes import get_probe
    from layerlab.train import rundir

    probe = get_probe(trial.probe)
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = dict(probe(dict(trial.probe_args), dict(inputs), run_dir, trial.seed))
    summary = rundir.finite_only({"status": metrics.pop("status", "completed"), **metrics})
    rundir.write_summary(run_dir, summary)
    return summary


def _pool_trial(args: tuple) -> TrialResult:
    """A trial in a pool process (module level, so it can be sent to another process).

    The process writes the trial's trial.json itself, as soon as it is final: a result still on its
    way back when the pool breaks (another of its processes killed) or this command is stopped is kept.
    """
    trial, config, run_dir, inputs, resume, device, cache_dir, threads = args
    logging.basicConfig(level=logging.WARNING)
    result = execute_trial(
        trial, config, run_dir, inputs, resume=resume, device=device, cache_dir=cache_dir, threads=threads
    )
    if result.status in FINAL:
        _write_trial(run_dir, result)
    return result


def _earlier_seconds(out_dir: Path) -> float:
    """Wall time spent on this experiment by earlier calls (experiment.json)."""
    try:
        return float(
            json.loads((out_dir / runlayout.EXPERIMENT).read_text(encoding="utf-8")).get("seconds") or 0
        )
    except (OSError, ValueError, TypeError):
        return 0.0


def _check_out_dir(out_dir: Path, spec: ExperimentSpec) -> None:
    marker = out_dir / runlayout.EXPERIMENT
    if not marker.is_file():
        return
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8")).get("fingerprint")
    except (OSError, ValueError):
        recorded = None
    if recorded != spec.fingerprint():
        raise ConfigError(
            f"'{out_dir}' holds another experiment (its config differs)",
            hint="choose another output directory, or run the config that made it",
        )


def run_local(
    config: Mapping | ExperimentSpec,
    out_dir: str | Path,
    *,
    parallel: int = 1,
    overrides: list[str] | tuple[str, ...] = (),
    on_event: Event | None = None,
    device: str = "auto",
    cache_dir: Path | None = None,
    callbacks_for: CallbacksFor | None = None,
    retry_failed: bool = False,
) -> Outcome:
    """Run (or continue) an experiment into ``out_dir`` and write its report.

    Args:
        config: the whole experiment config mapping (or a parsed spec).
        out_dir: the experiment's directory (trials/, report.json, report.md, plots/).
        parallel: trials run at once, each in its own process with ``cores // parallel`` threads.
        overrides: ``--set`` assignments applied to ``config``.
        on_event: called with ``{"event": "trial_kept" | "trial_started" | "trial_finished" | "report", ...}``
            (``trial_kept``: each trial an earlier call finished, first).
        device: ``auto``, ``cpu`` or ``cuda`` for the training trials.
        cache_dir: where decoded datasets are cached.
        callbacks_for: ``(trial, run_dir, resumed) -> callbacks`` for trials trained in this process.
        retry_failed: run failed and skipped trials again (completed ones are still never redone).
    """
    started = time.perf_counter()
    spec = config if isinstance(config, ExperimentSpec) else parse_experiment(config, overrides)
    if not 1 <= int(parallel) <= MAX_PARALLEL:
        raise ConfigError(f"parallel must be in [1, {MAX_PARALLEL}], got {parallel}", where="--parallel")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ConfigError(f"'{out_dir}' is a file, not a directory", hint="choose another output directory")
    _check_out_dir(out_dir, spec)
    results = read_results(out_dir)
    if retry_failed:  # failed and skipped trials run again (a transient error, a fixed machine)
        results = {k: r for k, r in results.items() if r.ok}
    checked: set[str] = set()
    next_step(spec, results, configs_checked=checked)  # every error of the first plan before any write
    earlier = _earlier_seconds(out_dir)
    marker = {
        "name": spec.name,
        "kind": spec.kind_name,
        "fingerprint": spec.fingerprint(),
        "config": spec.config,
    }
    _write_json(out_dir / runlayout.EXPERIMENT, {**marker, "seconds": earlier})
    emit = on_event or (lambda event: None)
    for result in results.values():  # a recorder may not have heard of them (that call was killed)
        emit(finished_event(result, "trial_kept"))
    runner = _Runner(spec, out_dir, results, emit, parallel, device, cache_dir, callbacks_for, checked)
    try:
        runner.loop()
    finally:  # the time taken adds up over interrupted and resumed calls
        seconds = earlier + time.perf_counter() - started
        _write_json(out_dir / runlayout.EXPERIMENT, {**marker, "seconds": round(seconds, 3)})
    trials = plan(spec, results)
    report, document = _document(spec, results, trials, seconds)
    write_report(out_dir, document)
    emit({"event": "report", "path": str(out_dir / runlayout.REPORT_MD)})
    return Outcome(
        out_dir, report, document, results, runner.ran, runner.resumed, time.perf_counter() - started
    )


def _document(spec: ExperimentSpec, results: dict, trials: dict, seconds: float) -> tuple[Report, dict]:
    """The report document; a kind whose report fails is one line (the finished trials are kept)."""
    try:
        report = make_report(spec, results)
        return report, report_document(spec, report, results, trials, seconds)
    except LayerlabError:
        raise
    except Exception as exc:
        logger.exception("the %s report failed", spec.kind_name)
        raise LayerlabError(
            f"the {spec.kind_name} report failed: {type(exc).__name__}: {exc}".splitlines()[0],
            hint="the finished trials are kept; rerun the same command once it is fixed",
        ) from None


class _Runner:
    """The loop of ``run_local``: start ready trials, record each as it finishes, re-plan."""

    def __init__(self, spec, out_dir, results, emit, parallel, device, cache_dir, callbacks_for, checked):
        self.spec, self.out_dir, self.results, self.emit = spec, out_dir, results, emit
        self.parallel, self.device, self.cache_dir = int(parallel), device, cache_dir
        self.callbacks_for, self.checked = callbacks_for, checked
        self.ran: list[str] = []
        self.resumed: list[str] = []

    def loop(self) -> None:
        if self.parallel == 1:
            self._serial()
        else:
            self._pooled()

    def _step(self, active=()):
        step = next_step(self.spec, self.results, active, configs_checked=self.checked)
        for skipped in step.skipped:
            self._finished(skipped)
        return step

    def _prepare(self, trial: Trial) -> tuple[dict, Path, dict, bool]:
        run_dir = trial_dir(self.out_dir, trial.key)
        inputs = {k: self.results[k] for k in trial.needs}
        config = resolve_refs(trial.config, lambda key: str(inputs[key].run_dir))
        resume = was_started(run_dir)
        (self.resumed if resume else self.ran).append(trial.key)
        self.emit(
            {
                "event": "trial_started",
                "key": trial.key,
                "labels": trial.labels,
                "probe": trial.probe,
                "config": config if trial.probe is None else {"probe": trial.probe, "args": trial.probe_args},
                "resumed": resume,
                "run_dir": str(run_dir),
            }
        )
        return config, run_dir, inputs, resume

    def _finished(self, result: TrialResult) -> None:
        self._record(result)
        if result.status not in FINAL:  # cancelled: stop here, the rerun resumes it
            raise _interrupted(f"trial {result.key} was {result.status}: the experiment stopped")

    def _record(self, result: TrialResult) -> None:
        """Keep a trial's result (trial.json when it is final) and tell ``on_event`` (the lab's rows)."""
        self.results[result.key] = result
        if result.status in FINAL:
            record_result(self.out_dir, result)
        self.emit(finished_event(result))

    def _serial(self) -> None:
        while True:
            step = self._step()
            if step.done or not step.ready:
                return
            for trial in step.ready:
                config, run_dir, inputs, resume = self._prepare(trial)
                extra = self.callbacks_for(trial, run_dir, resume) if self.callbacks_for else []
                result = execute_trial(
                    trial,
                    config,
                    run_dir,
                    inputs,
                    resume=resume,
                    device=self.device,
                    cache_dir=self.cache_dir,
                    callbacks=extra,
                )
                self._finished(result)

    def _pooled(self) -> None:
        """Trials in a pool of processes, each recorded the moment its process hands it back.

        However the loop ends early (Ctrl-C, a cancelled trial, a pool process killed), the trials that
        finished meanwhile are recorded before it stops, so a rerun redoes none of them.
        """
        from layerlab.train.threads import threads_for

        threads = threads_for(self.parallel)
        context = multiprocessing.get_context("spawn")  # torch and fork do not mix
        with futures.ProcessPoolExecutor(max_workers=self.parallel, mp_context=context) as pool:
            running: dict[futures.Future, str] = {}
            try:
                while True:
                    step = self._step(active=set(running.values()))
                    free = self.parallel - len(running)
                    for trial in step.ready[: max(0, free)]:
                        config, run_dir, inputs, resume = self._prepare(trial)
                        args = (trial, config, run_dir, inputs, resume, self.device, self.cache_dir, threads)
                        running[pool.submit(_pool_trial, args)] = trial.key
                    if not running:
                        return
                    finished, _ = futures.wait(running, return_when=futures.FIRST_COMPLETED)
                    self._collect({future: running.pop(future) for future in finished})
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)  # the trials still training end first
                for future, key in running.items():
                    if future.done() and not future.cancelled():
                        self._collect({future: key}, stop=False)
                raise

    def _collect(self, batch: dict[futures.Future, str], *, stop: bool = True) -> None:
        """Record every trial of ``batch`` (finished futures); then, when one of them was interrupted (its
        process died, Ctrl-C, cancelled), stop the experiment (``stop``), resumable."""
        interrupted = []
        for future, key in batch.items():
            try:
                result = future.result()
            except futures.process.BrokenProcessPool:  # a pool process was killed (OOM, a signal)
                kept = read_trial(trial_dir(self.out_dir, key))  # finished before the pool broke
                if kept is None:  # this trial's process, or one killed with it: resumable
                    interrupted.append(f"the process training trial {key} died")
                    continue
                result = kept
            except Exception as exc:  # noqa: BLE001 - what the trial raised is its failure
                result = TrialResult(key, "failed", {"error": str(exc) or type(exc).__name__}, None, 0.0)
            except BaseException:  # Ctrl-C reached the trial's process too: resumable
                interrupted.append(f"trial {key} was interrupted")
                continue
            self._record(result)
            if result.status not in FINAL:
                interrupted.append(f"trial {key} was {result.status}: the experiment stopped")
        if interrupted and stop:
            raise _interrupted(interrupted[0])


def _interrupted(text: str) -> ExperimentInterrupted:
    return ExperimentInterrupted(
        text, hint="run the same command again to resume it (finished trials are kept)"
    )
