"""The pieces every experiment kind is made of: trials, their results, the kind interface and its report.

An experiment kind (``research/kinds/<name>.py``) turns a base run config and its options into
trials (``plan``), and the finished trials into a report (``report``). The driver
(``research/driver.py``) runs what a kind plans, locally or on the lab's workers, and asks again
until nothing new is planned. Nothing here imports torch or Django.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from layerlab.core.errors import ConfigError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.=/-]{1,200}$")
TRIAL_REF = "trial:"  # a config value "trial:<key>" is replaced by that trial's run (driver.resolve_refs)

COMPLETED, FAILED, CANCELLED = "completed", "failed", "cancelled"


@dataclass(frozen=True)
class Trial:
    """One unit of work of an experiment: an ordinary training run of ``config``, or a probe.

    Attributes:
        key: stable and unique in the experiment, e.g. ``fc/d=100/seed=1`` ([A-Za-z0-9_.=/-]).
        config: a full run config mapping (data, model, train, seed) for a training trial.
        labels: this trial's columns in the results table, e.g. ``{"model": "fc", "d": 100}``.
        needs: keys of trials that must have completed first (any ``trial:<key>`` reference too).
        probe: None for a training run; else the name of a probe (``research/probes.py``).
        probe_args: the probe's arguments (JSON-able).
    """

    key: str
    config: dict
    labels: dict = field(default_factory=dict)
    needs: tuple[str, ...] = ()
    probe: str | None = None
    probe_args: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not KEY_PATTERN.match(self.key) or ".." in self.key.split("/") or self.key.startswith("/"):
            raise ConfigError(
                f"trial key '{self.key}' is not allowed",
                hint="use letters, digits and _ . = / - (no '..', no leading '/')",
            )

    @property
    def seed(self) -> int:
        """The trial's seed (its config's ``seed``, 0 when none)."""
        return int(self.config.get("seed", 0) or 0)


@dataclass
class TrialResult:
    """A finished trial: its status, its summary (a run's summary.json or a probe's metrics)."""

    key: str
    status: str  # completed | failed | cancelled
    summary: dict
    run_dir: Path | None
    seconds: float
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == COMPLETED

    def metric(self, name: str, default: Any = None) -> Any:
        """``summary[name]`` (e.g. ``test_accuracy``), ``default`` when absent."""
        value = (self.summary or {}).get(name)
        return default if value is None else value


@dataclass
class Plot:
    """A chart of a report: rendered to PNG (research/plots.py) and sent as JSON to Chart.js.

    ``series`` items: ``{"label": str, "x": [...], "y": [...], "lo": [...]?, "hi": [...]?}``
    (``lo``/``hi``: a confidence band or error bars). ``kind``: line, bar or scatter.
    """

    name: str
    title: str
    x_label: str
    y_label: str
    series: list[dict]
    kind: str = "line"
    hlines: list[dict] = field(default_factory=list)  # {"y": 0.9, "label": "90% of baseline"}
    log_x: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Report:
    """What an experiment found: the results table, findings in plain sentences, plots, the paper's table."""

    title: str
    columns: list[str]
    rows: list[dict]
    findings: list[str]
    plots: list[Plot] = field(default_factory=list)
    reference: dict | None = None  # {"source": str, "columns": [...], "rows": [...]}
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "columns": list(self.columns),
            "rows": [dict(r) for r in self.rows],
            "findings": list(self.findings),
            "plots": [p.to_dict() for p in self.plots],
            "reference": self.reference,
            "extra": dict(self.extra),
        }


class ExperimentKind:
    """The interface of an experiment kind. Subclass, set ``name`` and ``Options``, decorate with
    ``@register_kind``.

    ``Options`` is a configtree dataclass of the keys under ``experiment:`` (minus ``kind``);
    ``plan`` and ``report`` must be deterministic functions of their arguments.
    """

    name: ClassVar[str]
    Options: ClassVar[type]
    summary: ClassVar[str] = ""  # one line for `layerlab experiment kinds` and the docs
    # Options naming a file or directory on the machine that runs the experiment (a trained run's
    # directory): the lab refuses them for users who may not name server paths, before ``validate``
    # could read them.
    path_options: ClassVar[tuple[str, ...]] = ()

    def validate(self, base: dict, options: Any) -> None:
        """Deeper checks of the options against the base config (raise ConfigError); optional."""

    def plan(self, base: dict, options: Any, done: Mapping[str, TrialResult]) -> list[Trial]:
        """Every trial known so far, given the finished ones. Called again each time a trial
        finishes; the experiment ends when every planned trial is finished and nothing new appears."""
        raise NotImplementedError

    def report(self, base: dict, options: Any, results: Mapping[str, TrialResult]) -> Report:
        raise NotImplementedError


KINDS: dict[str, type[ExperimentKind]] = {}


def register_kind(cls: type[ExperimentKind]) -> type[ExperimentKind]:
    """Class decorator: make ``cls`` available as ``experiment: {kind: <cls.name>}``."""
    name = getattr(cls, "name", None)
    if not name or not isinstance(name, str):
        raise TypeError(f"{cls.__name__} needs a class attribute 'name'")
    if name in KINDS and KINDS[name] is not cls:
        raise TypeError(f"experiment kind '{name}' is registered twice")
    if not isinstance(getattr(cls, "Options", None), type):
        raise TypeError(f"{cls.__name__} needs a class attribute 'Options' (a dataclass)")
    KINDS[name] = cls
    return cls


def known_kinds() -> dict[str, type[ExperimentKind]]:
    """Every registered kind (importing research/kinds registers the built-in ones)."""
    import layerlab.research.kinds  # noqa: F401  (registers)

    return dict(sorted(KINDS.items()))
