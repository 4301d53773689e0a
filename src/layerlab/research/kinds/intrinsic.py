"""The ``intrinsic_dimension`` experiment (Li, Farkhoor, Liu, Yosinski, ICLR 2018).

For each model: a baseline by direct training, then subspace training (``train.subspace``:
theta = theta0 + P theta_d, only theta_d trains) for each ``d`` of a list, or a doubling search,
over seeds. The report gives d_int90 under both of the paper's definitions (the smallest d reaching
90% of the baseline's accuracy; reaching 90% accuracy), each with a bootstrap interval over seeds,
the accuracy-vs-d plot with the 90% lines, and the paper's table beside ours
(``intrinsic_report.py``).

Options (under ``experiment:``)::

    kind: intrinsic_dimension
    models: {fc: {preset: mlp, options: {hidden: [200, 200]}}, lenet: {preset: lenet5}}
    dims: [50, 100, 200, 400]            # or search: {start: 25, max: 3200} (doubling)
    projection: fastfood                 # dense | sparse | fastfood
    seeds: [0, 1, 2]
    baseline_epochs: 10                  # None: the base config's train.epochs
    epochs: 10                           # subspace epochs (None: train.epochs)
    lr: 0.01                             # subspace lr (None: train.lr)
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from layerlab.core.configtree import from_mapping, setting
from layerlab.core.errors import ConfigError
from layerlab.research.base import ExperimentKind, Report, Trial, TrialResult, register_kind
from layerlab.research.kinds import intrinsic_report
from layerlab.research.kinds.intrinsic_report import baseline_key, subspace_key
from layerlab.train.config import MAX_EPOCHS, MAX_LR, ModelConfig, experiment_from_mapping
from layerlab.train.subspace import check_compatible

MAX_DIM = 2**31 - 1
MAX_SEEDS = 100
MAX_DIMS = 200  # points of a sweep
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
BASE_MODEL = "model"  # the name of the base config's own model when ``models`` is empty


@dataclass
class SearchOptions:
    """A doubling search: d = start, 2 start, 4 start ... until the mean accuracy over seeds reaches the
    threshold (90% of the baseline, and 90% itself when the baseline gets there), or ``max``."""

    kind: Literal["doubling"] = "doubling"
    start: int = setting(10, help="the first d", minimum=1, maximum=MAX_DIM)
    max: int = setting(
        100_000, help="the largest d tried (capped at the parameter count)", minimum=1, maximum=MAX_DIM
    )

    def validate(self, where: str) -> None:
        if self.start > self.max:
            raise ConfigError(
                f"start {self.start} is above max {self.max}", hint="lower start or raise max", where=where
            )


@dataclass
class IntrinsicOptions:
    """Options of ``experiment: {kind: intrinsic_dimension}``."""

    models: dict[str, dict] = setting(
        default_factory=dict, help="table name -> model section (default: the base config's model)"
    )
    dims: list[int] = setting(
        default_factory=list, help="the subspace dimensions d", minimum=1, maximum=MAX_DIM
    )
    search: SearchOptions | None = None
    projection: Literal["dense", "sparse", "fastfood"] = "fastfood"
    seeds: list[int] = setting(
        default_factory=lambda: [0, 1, 2],
        help="seeds (network init, P, data order)",
        minimum=0,
        maximum=2**32 - 1,
    )
    baseline_epochs: int | None = setting(
        None, help="epochs of direct training (None: train.epochs)", minimum=1, maximum=MAX_EPOCHS
    )
    baseline_lr: float | None = setting(
        None, help="lr of direct training (None: train.lr)", above=0.0, maximum=MAX_LR
    )
    epochs: int | None = setting(
        None, help="epochs of subspace training (None: train.epochs)", minimum=1, maximum=MAX_EPOCHS
    )
    lr: float | None = setting(
        None, help="lr of subspace training (None: train.lr)", above=0.0, maximum=MAX_LR
    )
    threshold: float = setting(
        0.9, help="the fraction of the definitions: 90% of baseline; 90%", above=0.0, maximum=1.0
    )
    metric: Literal["test_accuracy", "val_accuracy"] = "test_accuracy"
    level: float = setting(0.95, help="confidence level of the intervals", above=0.0, below=1.0)
    bootstrap: int = setting(2000, help="bootstrap resamples of the seeds", minimum=100, maximum=100_000)

    def validate(self, where: str) -> None:
        if bool(self.dims) == (self.search is not None):
            raise ConfigError(
                "give either dims (a list) or search (a doubling search)",
                hint="e.g. dims: [50, 100, 200, 400] or search: {start: 25, max: 3200}",
                where=where,
            )
        if len(self.dims) > MAX_DIMS:
            raise ConfigError(f"at most {MAX_DIMS} dims, got {len(self.dims)}", where=f"{where}.dims")
        if len(set(self.dims)) != len(self.dims):
            raise ConfigError("a dim is given twice", hint="list each d once", where=f"{where}.dims")
        if not self.seeds or len(self.seeds) > MAX_SEEDS:
            raise ConfigError(
                f"give 1 to {MAX_SEEDS} seeds", hint="e.g. seeds: [0, 1, 2]", where=f"{where}.seeds"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("a seed is given twice", hint="list each seed once", where=f"{where}.seeds")
        for name, section in self.models.items():
            if not NAME.match(str(name)):
                raise ConfigError(
                    f"model name '{name}' is not allowed",
                    hint="use 1-40 letters, digits, _ . - (starting with a letter or digit)",
                    where=f"{where}.models",
                )
            from_mapping(ModelConfig, section, where=f"{where}.models.{name}")


def model_sections(base: dict, options: IntrinsicOptions) -> dict[str, dict | None]:
    """name -> model section (None: the base config's own model)."""
    return dict(options.models) if options.models else {BASE_MODEL: None}


def parameter_count(base: dict, section: dict | None) -> int | None:
    """D of a model against the base config's data (None when the shape is only known after import)."""
    from layerlab.nn.resolve import network_for_data
    from layerlab.nn.shapes import summarize

    config = copy.deepcopy(base)
    if section is not None:
        config["model"] = copy.deepcopy(section)
    cfg = experiment_from_mapping(config)
    spec = network_for_data(cfg.model, cfg.data)
    return None if spec is None else summarize(spec).total_params


def trial_config(base: dict, section: dict | None, seed: int, *, epochs, lr, subspace: dict | None) -> dict:
    """The base config with this model, seed, epochs, lr and (for a subspace trial) ``train.subspace``."""
    config = copy.deepcopy(base)
    config["seed"] = int(seed)
    if section is not None:
        config["model"] = copy.deepcopy(section)
    train = dict(config.get("train") or {})
    train.pop("subspace", None)
    if epochs is not None:
        train["epochs"] = int(epochs)
    if lr is not None:
        train["lr"] = float(lr)
    if subspace is not None:
        train["subspace"] = subspace
    config["train"] = train
    return config


@register_kind
class IntrinsicDimension(ExperimentKind):
    """Baselines, then subspace runs over d and seeds; d_int90 both ways with bootstrap intervals."""

    name = "intrinsic_dimension"
    Options = IntrinsicOptions
    summary = (
        "Li et al. 2018: subspace training over d, d_int90 (90% of baseline; 90%) with bootstrap intervals"
    )

    def validate(self, base: dict, options: IntrinsicOptions) -> None:
        """Every d of the list (or the search's start) within each model's parameter count."""
        smallest = min(options.dims) if options.dims else options.search.start
        largest = max(options.dims) if options.dims else options.search.start
        for name, section in model_sections(base, options).items():
            sub = {"dim": smallest, "projection": options.projection}
            trial = trial_config(base, section, 0, epochs=options.epochs, lr=options.lr, subspace=sub)
            check_compatible(experiment_from_mapping(trial))  # l1/l2, freeze ... refused before any run
            size = parameter_count(base, section)
            if size is not None and largest > size:
                where = "experiment.dims" if options.dims else "experiment.search.start"
                raise ConfigError(
                    f"d = {largest:,} is larger than the {name} network's {size:,} parameters",
                    hint=f"keep every d at most {size:,} (the smallest given is {smallest:,})",
                    where=where,
                )

    def plan(self, base: dict, options: IntrinsicOptions, done: Mapping[str, TrialResult]) -> list[Trial]:
        trials: list[Trial] = []
        for name, section in model_sections(base, options).items():
            for seed in options.seeds:
                config = trial_config(
                    base, section, seed, epochs=options.baseline_epochs, lr=options.baseline_lr, subspace=None
                )
                trials.append(
                    Trial(baseline_key(name, seed), config, {"model": name, "d": None, "seed": seed})
                )
            for d in self._dims(base, name, section, options, done):
                for seed in options.seeds:
                    sub = {"dim": int(d), "projection": options.projection}
                    config = trial_config(
                        base, section, seed, epochs=options.epochs, lr=options.lr, subspace=sub
                    )
                    trials.append(
                        Trial(subspace_key(name, d, seed), config, {"model": name, "d": d, "seed": seed})
                    )
        return trials

    def _dims(self, base, name, section, options: IntrinsicOptions, done) -> list[int]:
        """The list, or the doubling search's dims so far: the next d once every seed of the last one
        (and every baseline) finished without reaching the threshold."""
        if options.dims:
            return sorted(options.dims)
        search = options.search
        size = parameter_count(base, section)
        cap = min(search.max, size) if size is not None else search.max
        dims = [search.start]
        while True:
            d = dims[-1]
            keys = [subspace_key(name, d, s) for s in options.seeds]
            baselines = [baseline_key(name, s) for s in options.seeds]
            if not all(k in done for k in keys + baselines):
                return dims
            values = [done[k].metric(options.metric) for k in keys if done[k].ok]
            bases = [done[k].metric(options.metric) for k in baselines if done[k].ok]
            if not values or not bases or d >= cap:
                return dims  # nothing to judge by (every seed failed), or the cap is reached
            if intrinsic_report.reaches(
                sum(values) / len(values), sum(bases) / len(bases), options.threshold
            ):
                return dims
            dims.append(min(2 * d, cap))

    def report(self, base: dict, options: IntrinsicOptions, results: Mapping[str, TrialResult]) -> Report:
        models = model_sections(base, options)
        sizes = {name: parameter_count(base, section) for name, section in models.items()}
        return intrinsic_report.build_report(base, options, results, sizes)


__all__ = ["IntrinsicDimension", "IntrinsicOptions", "SearchOptions"]
