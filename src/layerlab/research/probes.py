"""Probes: trials that run research code instead of training (fit an SVM on a run's features ...).

A probe is a function ``probe(args, inputs, run_dir, seed) -> dict`` registered by name with
``@register_probe("codes_svm")``. ``inputs`` maps each key of the trial's ``needs`` to its
finished ``TrialResult`` (with ``run_dir``, the trained run to read). The driver writes the
returned JSON-able metrics as the trial's summary (``summary.json`` in ``run_dir``); in the lab
the trial is recorded as a run without checkpoints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

from layerlab.core.configtree import suggest
from layerlab.core.errors import ConfigError
from layerlab.research.base import TrialResult

Probe = Callable[[dict, Mapping[str, TrialResult], Path, int], dict]

PROBES: dict[str, Probe] = {}


def register_probe(name: str) -> Callable[[Probe], Probe]:
    """Decorator: make ``fn`` runnable as ``Trial(probe=name)``."""

    def decorate(fn: Probe) -> Probe:
        if name in PROBES and PROBES[name] is not fn:
            raise TypeError(f"probe '{name}' is registered twice")
        PROBES[name] = fn
        return fn

    return decorate


def get_probe(name: str) -> Probe:
    """The probe registered as ``name`` (the kinds package is imported first, so kinds' probes exist)."""
    import layerlab.research.kinds  # noqa: F401  (registers kinds and their probes)

    if name not in PROBES:
        close = suggest(name, PROBES)
        hint = f"did you mean '{close}'?" if close else f"known probes: {', '.join(sorted(PROBES)) or 'none'}"
        raise ConfigError(f"unknown probe '{name}'", hint=hint)
    return PROBES[name]
