"""The ``seeds`` experiment: the base run repeated over a list of seeds, reported as a mean and an interval.

The smallest honest experiment: one number from one seed may be lucky; the same config under
several seeds gives the spread. The report's table has one row per seed, and a findings line
with the mean test accuracy and its Student-t confidence interval.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass

from layerlab.core.configtree import setting
from layerlab.core.errors import ConfigError
from layerlab.research.base import ExperimentKind, Plot, Report, Trial, TrialResult, register_kind
from layerlab.research.stats import fmt_ci, mean_ci

MAX_SEEDS = 1000
METRICS = (
    "test_accuracy",
    "val_accuracy",
    "train_accuracy",
    "test_loss",
    "val_loss",
    "train_loss",
    "test_mse",
    "test_mae",
    "val_mse",
    "val_mae",
)


@dataclass
class SeedsOptions:
    """Options of ``experiment: {kind: seeds}``."""

    seeds: list[int] = setting(
        default_factory=lambda: [0, 1, 2],
        help="the seeds to repeat the run with",
        minimum=0,
        maximum=2**32 - 1,
    )
    level: float = setting(0.95, help="confidence level of the interval", above=0.0, below=1.0)
    metric: str = setting("test_accuracy", help="the summary metric reported: " + ", ".join(METRICS))

    def validate(self, where: str) -> None:
        if not self.seeds:
            raise ConfigError("give at least one seed", hint="e.g. seeds: [0, 1, 2]", where=f"{where}.seeds")
        if len(self.seeds) > MAX_SEEDS:
            raise ConfigError(f"at most {MAX_SEEDS} seeds, got {len(self.seeds)}", where=f"{where}.seeds")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError("a seed is given twice", hint="list each seed once", where=f"{where}.seeds")
        if self.metric not in METRICS:
            raise ConfigError(
                f"'{self.metric}' is not a reported metric",
                hint=f"choose one of: {', '.join(METRICS)}",
                where=f"{where}.metric",
            )


def _key(seed: int) -> str:
    return f"seed={seed}"


@register_kind
class Seeds(ExperimentKind):
    """The base config once per seed."""

    name = "seeds"
    Options = SeedsOptions
    summary = "repeat the base run over seeds; mean and confidence interval of a metric"

    def plan(self, base: dict, options: SeedsOptions, done: Mapping[str, TrialResult]) -> list[Trial]:
        trials = []
        for seed in options.seeds:
            config = copy.deepcopy(base)
            config["seed"] = seed
            trials.append(Trial(key=_key(seed), config=config, labels={"seed": seed}))
        return trials

    def report(self, base: dict, options: SeedsOptions, results: Mapping[str, TrialResult]) -> Report:
        metric = options.metric
        rows, values = [], []
        for seed in options.seeds:
            result = results.get(_key(seed))
            if result is None:
                continue
            value = result.metric(metric) if result.ok else None
            rows.append(
                {
                    "seed": seed,
                    "status": result.status,
                    metric: value,
                    "epochs": result.metric("epochs"),
                    "seconds": round(result.seconds, 2),
                }
            )
            if value is not None:
                values.append(float(value))
        mean, lo, hi = mean_ci(values, options.level)
        if metric.endswith("accuracy") and lo is not None:  # an accuracy lies in [0, 1]: so does its interval
            lo, hi = max(0.0, lo), min(1.0, hi)
        findings = [self._finding(metric, values, mean, lo, hi, options.level, len(rows))]
        plot = Plot(
            name="per_seed",
            title=f"{metric} per seed",
            x_label="seed",
            y_label=metric,
            kind="bar",
            series=[{"label": metric, "x": [r["seed"] for r in rows], "y": [r[metric] for r in rows]}],
            hlines=[{"y": mean, "label": "mean"}] if mean is not None else [],
        )
        return Report(
            title=f"{base.get('name') or 'run'} over {len(options.seeds)} seeds",
            columns=["seed", "status", metric, "epochs", "seconds"],
            rows=rows,
            findings=findings,
            plots=[plot],
            extra={
                "metric": metric,
                "mean": mean,
                "lo": lo,
                "hi": hi,
                "level": options.level,
                "n": len(values),
            },
        )

    @staticmethod
    def _finding(metric, values, mean, lo, hi, level, trials) -> str:
        if not values:
            return f"no trial completed, so there is no {metric} to report"
        failed = trials - len(values)
        text = f"{metric}: {fmt_ci(mean, lo, hi)} over {len(values)} seed(s)"
        if lo is not None:
            clipped = ", clipped to [0, 1]" if metric.endswith("accuracy") else ""
            text += (
                f" (mean and {level:.0%} Student-t interval{clipped}); "
                f"spread {min(values):.3f} to {max(values):.3f}"
            )
        else:
            text += " (one seed gives no interval: add seeds)"
        if failed:
            text += f"; {failed} trial(s) did not complete and are left out"
        return text
