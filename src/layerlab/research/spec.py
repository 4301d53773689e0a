"""The experiment config: an ordinary run config plus an ``experiment:`` section naming a kind.

``parse_experiment(mapping, overrides)`` applies ``--set`` overrides (``experiment.seeds=[1,2]``
works too), looks the kind up (an unknown one is answered with the closest name), reads its
options through ``core.configtree`` (unknown keys, types and limits checked), checks the rest as
``layerlab.train.config`` checks a run config, and lets the kind check the two together. Every
error is a ``ConfigError``: one line, before anything is written.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from layerlab.core.configtree import apply_override, from_mapping, suggest, to_mapping
from layerlab.core.errors import ConfigError
from layerlab.core.mappingfile import read_mapping
from layerlab.research.base import ExperimentKind, known_kinds
from layerlab.train.config import experiment_from_mapping, parse_scalar

SECTION = "experiment"


@dataclass
class ExperimentSpec:
    """A checked experiment: the kind (an instance), its options, the base run config.

    Attributes:
        kind: the kind's instance (``plan``, ``report``).
        options: the kind's ``Options`` dataclass, filled.
        base: the run config mapping without the ``experiment`` section, as written (after
            ``--set``), already checked; kinds copy and edit it into trial configs.
        config: the whole mapping (base + experiment section), what is stored and shown.
        name: the experiment's name (``name:`` of the config, else the kind's name).
    """

    kind: ExperimentKind
    options: Any
    base: dict
    config: dict
    name: str

    @property
    def kind_name(self) -> str:
        return self.kind.name

    def options_dict(self) -> dict:
        return to_mapping(self.options)

    def fingerprint(self) -> str:
        """A short hash of the whole config: a rerun with another config is refused (driver)."""
        text = json.dumps(self.config, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def find_kind(name: Any) -> type[ExperimentKind]:
    """The registered kind called ``name``; a ConfigError with the closest name otherwise."""
    kinds = known_kinds()
    if not isinstance(name, str) or not name:
        raise ConfigError(
            "the experiment section needs a kind",
            hint=f"add kind: one of {', '.join(kinds)}",
            where=f"{SECTION}.kind",
        )
    if name not in kinds:
        close = suggest(name, kinds)
        hint = f"did you mean '{close}'?" if close else f"choose one of: {', '.join(kinds)}"
        raise ConfigError(f"unknown experiment kind '{name}'", hint=hint, where=f"{SECTION}.kind")
    return kinds[name]


def parse_experiment(
    mapping: Mapping, overrides: list[str] | tuple[str, ...] = (), *, allow_paths: bool = True
) -> ExperimentSpec:
    """Check a whole experiment config mapping (plus ``--set`` overrides) and return its spec.

    ``allow_paths=False`` (the lab, for users who may not name server paths) refuses the kind's
    ``path_options`` before the kind's ``validate`` could open what they name.
    """
    if not isinstance(mapping, Mapping):
        raise ConfigError("the top level must be a mapping (seed, data, model, train, experiment)")
    data = copy.deepcopy(dict(mapping))
    for assignment in overrides:
        apply_override(data, assignment, parse_scalar)
    section = data.get(SECTION)
    if section is None:
        raise ConfigError(
            f"no '{SECTION}' section",
            hint=f"add experiment: {{kind: seeds}} (kinds: {', '.join(known_kinds())}); "
            "`layerlab train` runs a plain config",
            where="config",
        )
    if not isinstance(section, dict):
        raise ConfigError(f"expected a mapping, got {type(section).__name__} {section!r}", where=SECTION)
    options_raw = dict(section)
    kind_cls = find_kind(options_raw.pop("kind", None))
    options = from_mapping(kind_cls.Options, options_raw, where=SECTION)
    if not allow_paths:
        for name in kind_cls.path_options:
            if getattr(options, name, None) not in (None, ""):
                raise ConfigError(
                    f"{SECTION}.{name} names a directory on the server, which only a superuser may do",
                    hint=f"leave {name} out (the experiment trains what it needs) or run it with "
                    "`layerlab experiment run` on your machine",
                    where=f"{SECTION}.{name}",
                )
    base = {k: v for k, v in data.items() if k != SECTION}
    experiment_from_mapping(base)  # the run config's own checks (unknown keys, limits ...)
    kind = kind_cls()
    kind.validate(copy.deepcopy(base), options)
    name = str(base.get("name") or kind_cls.name)
    return ExperimentSpec(kind=kind, options=options, base=base, config=data, name=name)


def load_experiment_spec(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentSpec:
    """Read an experiment config file (YAML or JSON) and check it."""
    data = read_mapping(path, what="a mapping (seed, data, model, train, experiment)")
    return parse_experiment(data, overrides)


def parse_experiment_text(
    text: str, overrides: list[str] | tuple[str, ...] = (), *, allow_paths: bool = True
) -> ExperimentSpec:
    """Check an experiment config given as YAML/JSON text (the API and the dashboard's form)."""
    from layerlab.core.mappingfile import _DuplicateKey, parse_mapping_text

    try:
        data = parse_mapping_text(text)
    except _DuplicateKey as dup:
        where = f"config:{dup.line}" if dup.line else "config"
        raise ConfigError(f"key '{dup.key}' is given twice", hint="keep one of them", where=where) from None
    except Exception as exc:  # noqa: BLE001 - yaml's errors, reported as one line
        raise ConfigError(f"cannot parse: {exc}".splitlines()[0], where="config") from None
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping (seed, data, model, train, experiment)")
    return parse_experiment(data, overrides, allow_paths=allow_paths)


def check_trial_config(config: dict, key: str) -> None:
    """Check one planned trial's run config (a kind's bug or a bad combination shows before any run)."""
    try:
        experiment_from_mapping(config)
    except ConfigError as exc:
        raise ConfigError(exc.message, hint=exc.hint, where=f"trial {key}: {exc.where or 'config'}") from None
