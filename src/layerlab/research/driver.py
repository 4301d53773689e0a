"""The experiment driver: plan, run the ready trials, re-plan until done, report.

The driver is the same for every place an experiment runs. ``next_step(spec, results, active)``
is a pure function of what is finished: it asks the kind for every trial it knows, checks the
plan (unique keys, needs that exist, ``trial:<key>`` references listed in ``needs``, each config a
valid run config), and answers which trials are ready to start, which can never run (a needed
trial failed: they are marked ``skipped``) and whether the experiment is done. ``research/local.py``
loops over it in this process (or a pool of processes); the lab's ``apps/experiments`` calls it
each time a trial's run finishes and queues the ready ones on the workers.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from layerlab.core.errors import ConfigError
from layerlab.research.base import COMPLETED, TRIAL_REF, Report, Trial, TrialResult
from layerlab.research.spec import ExperimentSpec, check_trial_config

MAX_TRIALS = 10_000
SKIPPED = "skipped"
FINAL = (COMPLETED, "failed", SKIPPED)  # a trial in one of these states is never run again


@dataclass
class Step:
    """What to do next. ``trials``: every planned trial by key (plan order); ``ready``: trials to start
    now; ``skipped``: results for trials that can never run; ``done``: nothing left to run or wait for."""

    trials: dict[str, Trial]
    ready: list[Trial] = field(default_factory=list)
    skipped: list[TrialResult] = field(default_factory=list)
    done: bool = False


def trial_refs(value: Any) -> set[str]:
    """Every key referenced as ``"trial:<key>"`` anywhere in a config value."""
    if isinstance(value, str):
        return {value[len(TRIAL_REF) :]} if value.startswith(TRIAL_REF) else set()
    if isinstance(value, Mapping):
        return set().union(*(trial_refs(v) for v in value.values())) if value else set()
    if isinstance(value, list | tuple):
        return set().union(*(trial_refs(v) for v in value)) if value else set()
    return set()


def resolve_refs(config: dict, ref: Callable[[str], str]) -> dict:
    """A copy of ``config`` with every ``"trial:<key>"`` string replaced by ``ref(key)`` (a run
    directory locally, ``run:<id>`` in the lab)."""

    def walk(value: Any) -> Any:
        if isinstance(value, str) and value.startswith(TRIAL_REF):
            return ref(value[len(TRIAL_REF) :])
        if isinstance(value, dict):
            return {k: walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return walk(copy.deepcopy(config))


def check_plan(trials: Iterable[Trial], *, configs_checked: set[str] | None = None) -> dict[str, Trial]:
    """The trials by key, refusing a plan the driver cannot run (a kind's bug or a bad combination).

    ``configs_checked`` (keys whose config was already checked) saves re-checking unchanged trials.
    """
    by_key: dict[str, Trial] = {}
    for trial in trials:
        if not isinstance(trial, Trial):
            raise ConfigError(f"a kind planned {type(trial).__name__}, not a Trial")
        if trial.key in by_key:
            raise ConfigError(
                f"trial key '{trial.key}' is planned twice", hint="each trial needs its own key"
            )
        by_key[trial.key] = trial
    if len(by_key) > MAX_TRIALS:
        raise ConfigError(
            f"the experiment plans {len(by_key)} trials, more than {MAX_TRIALS}",
            hint="fewer seeds, dimensions or models",
        )
    for trial in by_key.values():
        missing = [k for k in trial.needs if k not in by_key]
        if missing:
            raise ConfigError(f"trial {trial.key} needs '{missing[0]}', which is not planned")
        unlisted = sorted(trial_refs(trial.config) - set(trial.needs))
        if unlisted:
            raise ConfigError(
                f"trial {trial.key} refers to trial:{unlisted[0]} without needing it",
                hint="list every referenced trial in needs",
            )
        if trial.probe is None and (configs_checked is None or trial.key not in configs_checked):
            check_trial_config(trial.config, trial.key)
            if configs_checked is not None:
                configs_checked.add(trial.key)
    _check_acyclic(by_key)
    return by_key


def _check_acyclic(by_key: Mapping[str, Trial]) -> None:
    state: dict[str, int] = {}  # 1: on the path, 2: checked

    def visit(key: str) -> None:
        stack = [(key, iter(by_key[key].needs))]
        state[key] = 1
        while stack:
            node, needs = stack[-1]
            nxt = next(needs, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                raise ConfigError(f"trials {node} and {nxt} need each other (a cycle)")
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(by_key[nxt].needs)))

    for key in by_key:
        if key not in state:
            visit(key)


def plan(spec: ExperimentSpec, results: Mapping[str, TrialResult], **kwargs) -> dict[str, Trial]:
    """Every trial the kind knows given ``results``, checked."""
    done = {k: r for k, r in results.items() if r.status in FINAL}
    trials = spec.kind.plan(copy.deepcopy(spec.base), spec.options, done)
    return check_plan(trials, **kwargs)


def next_step(
    spec: ExperimentSpec,
    results: Mapping[str, TrialResult],
    active: Iterable[str] = (),
    *,
    configs_checked: set[str] | None = None,
) -> Step:
    """What to do next, given the finished trials (``results``) and those running now (``active``).

    A trial is ready when it is neither finished nor active and all its needs completed; a trial
    one of whose needs failed or was skipped is skipped itself (re-planning until that settles).
    """
    results = dict(results)
    active = set(active)
    skipped: list[TrialResult] = []
    for _round in range(MAX_TRIALS):
        trials = plan(spec, results, configs_checked=configs_checked)
        ready, newly_skipped = [], []
        for trial in trials.values():
            if trial.key in results and results[trial.key].status in FINAL or trial.key in active:
                continue
            needs = [results.get(k) for k in trial.needs]
            if any(n is not None and n.status in FINAL and not n.ok for n in needs):
                bad = next(k for k, n in zip(trial.needs, needs, strict=True) if n is not None and not n.ok)
                newly_skipped.append(
                    TrialResult(
                        trial.key, SKIPPED, {"error": f"needed trial {bad} did not complete"}, None, 0.0
                    )
                )
            elif all(n is not None and n.ok for n in needs):
                ready.append(trial)
        if not newly_skipped:
            waiting = [k for k in trials if k not in results or results[k].status not in FINAL]
            done = not ready and not (active & set(trials)) and not waiting
            return Step(trials=trials, ready=ready, skipped=skipped, done=done)
        for result in newly_skipped:
            results[result.key] = result
        skipped += newly_skipped
    raise ConfigError("the experiment's plan does not settle", hint="a kind keeps adding trials")


def make_report(spec: ExperimentSpec, results: Mapping[str, TrialResult]) -> Report:
    """The kind's report over the finished trials of the final plan."""
    trials = plan(spec, results)
    finished = {k: results[k] for k in trials if k in results}
    return spec.kind.report(copy.deepcopy(spec.base), spec.options, finished)
