"""The ``sweep:`` section: method, parameters by dotted config key, metric and goal, trials, parallel, pruner.

Parsed and checked here (no Django, no Optuna) so a bad section is one clear line before anything is
created. ``distributions`` and ``sampler_for``/``pruner_for`` turn a checked spec into Optuna's objects.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from layerlab.core.configtree import flatten, suggest
from layerlab.core.errors import ConfigError

METHODS = ("grid", "random", "tpe", "cmaes")
PRUNERS = ("none", "median", "asha", "hyperband")
GOALS = ("maximize", "minimize")
DISTRIBUTIONS = ("uniform", "loguniform", "int", "choice")
SPEC_KEYS = ("method", "parameters", "metric", "goal", "trials", "parallel", "pruner", "warmup", "seed")
# Grid and choice values must be JSON scalars (Optuna's categorical distributions hold no lists).
SCALARS = (str, int, float, bool, type(None))
MAX_TRIALS = 100_000
MAX_PARALLEL = 100  # trials queued at once (each is a run created by the request that asks it)


@dataclass
class Parameter:
    key: str  # dotted config key, e.g. train.lr
    distribution: str  # uniform, loguniform, int, choice
    low: float | None = None
    high: float | None = None
    step: float | None = None
    values: list = field(default_factory=list)

    def grid_count(self) -> int:
        """How many grid points ``grid_values`` holds (without making them)."""
        if self.distribution == "int":
            return (int(self.high) - int(self.low)) // int(self.step or 1) + 1
        return len(self.grid_values())

    def grid_values(self) -> list:
        """The grid points of this parameter (choice values; every step of an int range)."""
        if self.distribution == "choice":
            return list(self.values)
        if self.distribution == "int":
            step = int(self.step or 1)
            return list(range(int(self.low), int(self.high) + 1, step))
        raise ConfigError(
            f"a {self.distribution} range has no grid points",
            hint="give a list of values (or an int range) for method grid",
            where=f"sweep.parameters.{self.key}",
        )


@dataclass
class SweepSpec:
    method: str = "tpe"
    parameters: list[Parameter] = field(default_factory=list)
    metric: str = "val_accuracy"
    goal: str = "maximize"
    trials: int = 10
    parallel: int = 1
    pruner: str = "none"
    # Epochs a trial trains before its pruner may stop it (0: a ninth of train.epochs, at least 1, set at
    # create): the first epochs' metric is mostly noise.
    warmup: int = 0
    seed: int | None = None

    def to_dict(self) -> dict:
        data = asdict(self)
        data["parameters"] = {
            p["key"]: {k: v for k, v in p.items() if k != "key"} for p in data["parameters"]
        }
        return data

    def grid_size(self) -> int:
        return math.prod(p.grid_count() for p in self.parameters)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"expected a finite number, got {value!r}", where=where)
    return value


def _parameter(key: str, value: Any) -> Parameter:
    where = f"sweep.parameters.{key}"
    if isinstance(value, list):
        value = {"distribution": "choice", "values": value}
    if not isinstance(value, dict):
        raise ConfigError(
            "expected a list of values or a distribution",
            hint="e.g. [0.01, 0.1] or {distribution: loguniform, low: 1e-4, high: 1e-1}",
            where=where,
        )
    unknown = set(value) - {"distribution", "low", "high", "step", "values"}
    if unknown:
        name = sorted(unknown)[0]
        close = suggest(name, ["distribution", "low", "high", "step", "values"])
        raise ConfigError(
            f"unknown key '{name}'", hint=f"did you mean '{close}'?" if close else None, where=where
        )
    kind = value.get("distribution", "choice" if "values" in value else None)
    if kind not in DISTRIBUTIONS:
        raise ConfigError(
            f"unknown distribution {kind!r}", hint=f"use one of {', '.join(DISTRIBUTIONS)}", where=where
        )
    if kind == "choice":
        values = value.get("values")
        if not isinstance(values, list) or not values:
            raise ConfigError("the list of values is empty", hint="give at least one value", where=where)
        for item in values:
            if not isinstance(item, SCALARS):
                raise ConfigError(f"value {item!r} is not a number, string or boolean", where=where)
        if len({repr(v) for v in values}) != len(values):
            raise ConfigError("the list of values repeats a value", where=where)
        return Parameter(key=key, distribution=kind, values=list(values))
    if "low" not in value or "high" not in value:
        raise ConfigError(f"a {kind} range needs low and high", where=where)
    low, high = _number(value["low"], f"{where}.low"), _number(value["high"], f"{where}.high")
    step = value.get("step")
    if kind == "int":
        for name, number in (("low", low), ("high", high), ("step", step)):
            if number is not None and (isinstance(number, bool) or int(number) != number):
                raise ConfigError(f"an int range needs whole numbers, {name} is {number!r}", where=where)
        low, high = int(low), int(high)
    if step is not None:
        step = _number(step, f"{where}.step")
        if step <= 0:
            raise ConfigError(f"step must be positive, got {step}", where=where)
    if high < low:
        raise ConfigError(f"the range is inverted: low {low} > high {high}", hint="swap them", where=where)
    if high == low and kind != "int":
        raise ConfigError(f"the range is empty: low = high = {low}", where=where)
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"a loguniform range needs low > 0, got {low}", where=where)
    return Parameter(key=key, distribution=kind, low=low, high=high, step=step)


def _int_field(raw: dict, name: str, default: int, low: int, high: int) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(
            f"expected a whole number from {low} to {high}, got {value!r}", where=f"sweep.{name}"
        )
    return value


def spec_from_mapping(raw: Any) -> SweepSpec:
    """The checked ``sweep:`` section (ConfigError naming the key otherwise)."""
    if not isinstance(raw, dict):
        raise ConfigError("the sweep section must be a mapping", hint="see docs/sweeps.md", where="sweep")
    for key in raw:
        if key not in SPEC_KEYS:
            close = suggest(str(key), SPEC_KEYS)
            raise ConfigError(
                f"unknown key '{key}'",
                hint=f"did you mean '{close}'?" if close else f"known keys: {', '.join(SPEC_KEYS)}",
                where="sweep",
            )
    method = raw.get("method", "tpe")
    if method not in METHODS:
        raise ConfigError(
            f"unknown method {method!r}", hint=f"use one of {', '.join(METHODS)}", where="sweep.method"
        )
    pruner = raw.get("pruner", "none") or "none"
    if pruner not in PRUNERS:
        raise ConfigError(
            f"unknown pruner {pruner!r}", hint=f"use one of {', '.join(PRUNERS)}", where="sweep.pruner"
        )
    goal = raw.get("goal", "maximize")
    if goal not in GOALS:
        raise ConfigError(f"unknown goal {goal!r}", hint="use maximize or minimize", where="sweep.goal")
    metric = raw.get("metric", "val_accuracy")
    if not isinstance(metric, str) or not metric:
        raise ConfigError("metric must name a per-epoch metric, e.g. val_accuracy", where="sweep.metric")
    params = raw.get("parameters")
    if not isinstance(params, dict) or not params:
        raise ConfigError(
            "no parameters to search",
            hint="e.g. parameters: {train.lr: {distribution: loguniform, low: 1e-4, high: 1e-1}}",
            where="sweep.parameters",
        )
    parameters = [_parameter(str(key), value) for key, value in params.items()]
    seed = raw.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise ConfigError(f"seed must be a whole number, got {seed!r}", where="sweep.seed")
    spec = SweepSpec(method=method, parameters=parameters, metric=metric, goal=goal, pruner=pruner, seed=seed)
    if method == "cmaes" and not any(p.distribution != "choice" for p in parameters):
        raise ConfigError(
            "cmaes searches numeric ranges; every parameter here is a list", where="sweep.method"
        )
    grid = spec.grid_size() if method == "grid" else None
    spec.trials = _int_field(raw, "trials", grid or 10, 1, MAX_TRIALS)
    if grid is not None and grid > spec.trials:
        raise ConfigError(
            f"the grid has {grid} points, more than trials ({spec.trials})",
            hint=f"set trials: {grid} (or leave it out), or give fewer values",
            where="sweep.trials",
        )
    spec.parallel = _int_field(raw, "parallel", 1, 1, MAX_PARALLEL)
    spec.warmup = _int_field(raw, "warmup", 0, 0, 1_000_000)
    return spec


def split_config(mapping: dict, sweep: dict | None = None) -> tuple[dict, dict]:
    """The experiment config (without ``sweep``) and the sweep section (``sweep`` given apart wins)."""
    if not isinstance(mapping, dict):
        raise ConfigError("config must be a mapping with seed, data, model, train", where="config")
    base = copy.deepcopy(mapping)
    section = base.pop("sweep", None)
    if sweep is not None:
        section = sweep
    if section is None:
        raise ConfigError(
            "the config has no sweep section", hint="add sweep: (see docs/sweeps.md)", where="sweep"
        )
    return base, section


def keys_check(spec: SweepSpec, resolved: dict) -> None:
    """Every parameter key names a setting of the resolved config (suggesting the closest otherwise),
    and the metric is one the config's task reports (regression and reconstruction have no accuracy)."""
    task = (resolved.get("train") or {}).get("task") or "classification"
    if task != "classification" and spec.metric.endswith("accuracy"):
        raise ConfigError(
            f"a {task} run reports no accuracy, so {spec.metric} cannot be the objective",
            hint="set metric: val_loss and goal: minimize",
            where="sweep.metric",
        )
    known = flatten(resolved)
    for parameter in spec.parameters:
        if parameter.key in known:
            continue
        close = suggest(parameter.key, known)
        raise ConfigError(
            f"'{parameter.key}' is not a key of the config",
            hint=f"did you mean '{close}'?" if close else "name a setting as train.lr or data.batch_size",
            where="sweep.parameters",
        )


def config_with(base: dict, params: dict) -> dict:
    """``base`` with each dotted key of ``params`` set (sub-mappings made as needed)."""
    mapping = copy.deepcopy(base)
    for key, value in params.items():
        node = mapping
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    return mapping


def spec_from_dict(data: dict) -> SweepSpec:
    """A spec stored by ``SweepSpec.to_dict`` (already checked)."""
    data = dict(data)
    params = data.pop("parameters")
    return SweepSpec(parameters=[Parameter(key=k, **v) for k, v in params.items()], **data)


def distributions(spec: SweepSpec) -> dict:
    """Optuna's distributions, by parameter key."""
    import optuna

    out = {}
    for p in spec.parameters:
        if p.distribution == "choice":
            out[p.key] = optuna.distributions.CategoricalDistribution(p.values)
        elif p.distribution == "int":
            out[p.key] = optuna.distributions.IntDistribution(int(p.low), int(p.high), step=int(p.step or 1))
        elif p.distribution == "loguniform":
            out[p.key] = optuna.distributions.FloatDistribution(p.low, p.high, log=True)
        else:
            out[p.key] = optuna.distributions.FloatDistribution(p.low, p.high, step=p.step)
    return out


def sampler_for(spec: SweepSpec, *, seed: int | None):
    import optuna

    if spec.method == "grid":

        class LabGridSampler(optuna.samplers.GridSampler):
            def after_trial(self, study, trial, state, values) -> None:
                # Optuna's stops an optimize loop once the grid is done; ask/tell has none (the lab
                # asks at most the grid's size).
                pass

        return LabGridSampler({p.key: p.grid_values() for p in spec.parameters}, seed=seed)
    if spec.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if spec.method == "cmaes":
        return optuna.samplers.CmaEsSampler(seed=seed, warn_independent_sampling=False)
    return optuna.samplers.TPESampler(seed=seed)


def pruner_for(spec: SweepSpec):
    import optuna

    warmup = max(1, spec.warmup)
    if spec.pruner == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=warmup)
    if spec.pruner == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=warmup, reduction_factor=3)
    if spec.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=warmup, max_resource="auto", reduction_factor=3)
    return optuna.pruners.NopPruner()
