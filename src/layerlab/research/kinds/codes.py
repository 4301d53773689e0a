"""The ``codes`` experiment (CS231n, transfer learning): CNN codes + a linear classifier against every baseline.

A source network is trained (``experiment.source`` edits the base config: other classes, other people)
or given (``experiment.run``); the base config's ``data`` is the *new* data set. On the same split
of it, per seed, the report compares:

* ``codes``: the source network's codes (the input of its last linear layer, or ``layer``) + a linear SVM;
* ``earlier``: codes of an earlier layer (``earlier_layer``; default the block before the last);
* ``pixels``: the raw (normalized) pixels + the same linear SVM;
* ``random``: codes of the same architecture at random initialization;
* ``finetune``: the whole network trained on the new data from the source's weights (``model.init_from``);
* ``scratch``: the same network trained on the new data from scratch;

and a few-shot curve: codes and pixels with k examples per class (several seeded draws). C is chosen by
stratified cross-validation on the training split (research/codes.py). The report says which of
CS231n's four regimes (small or large data, similar or different to the source) the result supports.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from layerlab.core.configtree import setting
from layerlab.core.errors import ConfigError
from layerlab.research import codes as _codes  # noqa: F401  (registers the codes_linear / codes_fewshot probes)
from layerlab.research.base import ExperimentKind, Report, Trial, TrialResult, register_kind

PROBED = ("codes", "earlier", "pixels", "random")
TRAINED = ("finetune", "scratch")
METHODS = {
    "codes": "CNN codes + linear classifier",
    "earlier": "earlier-layer codes + linear classifier",
    "pixels": "raw pixels + linear classifier",
    "random": "random-init codes + linear classifier",
    "finetune": "fine-tuning the whole network",
    "scratch": "training from scratch",
}
REGIMES = {  # CS231n, "Transfer Learning": what to do in each case
    ("small", "similar"): "train a linear classifier on the CNN codes",
    ("small", "different"): "train a linear classifier on activations from earlier in the network",
    ("large", "similar"): "fine-tune the whole network",
    ("large", "different"): "train from scratch (or fine-tune the whole network)",
}
SIGNIFICANCE = 0.05


@dataclass
class CodesOptions:
    """Options of ``experiment: {kind: codes}``."""

    run: str | None = setting(None, help="a trained run (directory) to take codes from; default: train one")
    source: dict = field(
        default_factory=dict
    )  # edits of the base config for the source run (data, train ...)
    layer: str | None = None  # the code layer (its output); default: the input of the last linear layer
    earlier_layer: str | None = None  # default: the output of the pooling block before the last
    classifier: Literal["svm", "logistic"] = "svm"
    Cs: list[float] = setting(
        default_factory=lambda: [0.001, 0.01, 0.1, 1.0, 10.0],
        help="C values searched",
        above=0.0,
        maximum=1e6,
    )
    folds: int = setting(3, help="cross-validation folds on the training split", minimum=2, maximum=20)
    seeds: list[int] = setting(default_factory=lambda: [0, 1, 2], help="seeds", minimum=0, maximum=2**32 - 1)
    shots: list[int] = setting(
        default_factory=lambda: [1, 5, 10, 25], help="few-shot k per class", minimum=1, maximum=100_000
    )
    draws: int = setting(5, help="few-shot draws per k", minimum=1, maximum=1000)
    finetune: dict = field(default_factory=dict)  # train edits for fine-tuning (e.g. a lower lr)
    new_head: bool = setting(True, help="fine-tuning: a fresh last linear layer (CS231n), not the source's")
    large_per_class: int = setting(
        1000, help="training examples per class from which the new data counts as large", minimum=1
    )
    level: float = setting(0.95, help="confidence level", above=0.0, below=1.0)

    def validate(self, where: str) -> None:
        for name in ("seeds", "shots", "Cs"):
            values = getattr(self, name)
            if not values:
                raise ConfigError(f"{name} is empty", where=f"{where}.{name}")
            if len(set(values)) != len(values):
                raise ConfigError(f"{name} lists a value twice", where=f"{where}.{name}")
        if len(self.seeds) > 100 or len(self.shots) > 50:
            raise ConfigError("at most 100 seeds and 50 shot counts", where=where)
        if self.run and self.source:
            raise ConfigError("give run (a trained source) or source (train one), not both", where=where)
        unknown = sorted(set(self.source) - {"data", "model", "train"})
        if unknown:
            raise ConfigError(
                f"source may edit data, model and train, not '{unknown[0]}'", where=f"{where}.source"
            )


def merged(base: dict, edits: dict) -> dict:
    """``base`` with ``edits`` merged in, mapping by mapping (a deep copy)."""
    out = copy.deepcopy(base)
    for key, value in (edits or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _source_key(seed: int) -> str:
    return f"source/seed={seed}"


@register_kind
class Codes(ExperimentKind):
    """CNN codes + a linear classifier against pixels, random codes, fine-tuning and training from scratch."""

    name = "codes"
    Options = CodesOptions
    path_options = ("run",)
    summary = "CNN codes + linear SVM vs pixels, random init, fine-tuning, scratch; few-shot curve (CS231n)"

    def validate(self, base: dict, options: CodesOptions) -> None:
        from layerlab.train.config import experiment_from_mapping

        if options.source:
            experiment_from_mapping(merged(base, options.source))  # the source's config, checked now
        if options.run or options.layer or options.earlier_layer:
            self._check_layers(base, options)

    @staticmethod
    def _check_layers(base: dict, options: CodesOptions) -> None:
        """A layer name the source network lacks: one line listing its layers, before anything runs."""
        from layerlab.research.codes import resolve_layer

        model = _source_network(base, options)
        if options.layer:
            resolve_layer(model, options.layer, where="experiment.layer")
        if options.earlier_layer:
            resolve_layer(model, options.earlier_layer, earlier=True, where="experiment.earlier_layer")

    def plan(self, base: dict, options: CodesOptions, done: Mapping[str, TrialResult]) -> list[Trial]:
        trials: list[Trial] = []
        common = {
            "data": base.get("data") or {},
            "layer": options.layer,
            "earlier_layer": options.earlier_layer,
            "classifier": options.classifier,
            "Cs": list(options.Cs),
            "folds": options.folds,
        }
        for seed in options.seeds:
            config = {**copy.deepcopy(base), "seed": seed}
            needs: tuple[str, ...] = ()
            source_args: dict = {"run": options.run}
            if not options.run:
                needs = (_source_key(seed),)
                source_args = {"source": _source_key(seed)}
                source = {**merged(base, options.source), "seed": seed}
                trials.append(Trial(_source_key(seed), source, {"method": "source", "seed": seed}))
            for kind in PROBED:
                args = {**common, **source_args, "features": kind, "data_seed": seed}
                trials.append(
                    Trial(
                        f"{kind}/seed={seed}",
                        config,
                        {"method": kind, "seed": seed},
                        needs=() if kind == "pixels" else needs,
                        probe="codes_linear",
                        probe_args=args,
                    )
                )
            tuned = merged(config, {"train": options.finetune})
            tuned.setdefault("model", {})["init_from"] = options.run or f"trial:{_source_key(seed)}"
            if options.new_head:  # the source's classes are not the new data's: a fresh classifier
                tuned["model"]["init_skip"] = [_head_name(base, options)]
            trials.append(
                Trial(f"finetune/seed={seed}", tuned, {"method": "finetune", "seed": seed}, needs=needs)
            )
            trials.append(
                Trial(f"scratch/seed={seed}", copy.deepcopy(config), {"method": "scratch", "seed": seed})
            )
        first = options.seeds[0]
        source_args = {"run": options.run} if options.run else {"source": _source_key(first)}
        for k in options.shots:
            args = {**common, **source_args, "k": k, "draws": options.draws, "data_seed": first}
            trials.append(
                Trial(
                    f"fewshot/k={k}",
                    {**copy.deepcopy(base), "seed": first},
                    {"method": "fewshot", "k": k},
                    needs=() if options.run else (_source_key(first),),
                    probe="codes_fewshot",
                    probe_args=args,
                )
            )
        return trials

    def report(self, base: dict, options: CodesOptions, results: Mapping[str, TrialResult]) -> Report:
        from layerlab.research.kinds.codes_report import codes_report

        return codes_report(base, options, results)


def _head_name(base: dict, options: CodesOptions) -> str:
    """The source network's classifier: its last linear layer (re-initialized for fine-tuning)."""
    import torch

    model = _source_network(base, options)
    linear = [name for name, module in model.named_children() if isinstance(module, torch.nn.Linear)]
    if not linear:
        raise ConfigError("the source network has no linear layer to replace", hint="set new_head: false")
    return linear[-1]


def _source_network(base: dict, options: CodesOptions):
    """The source architecture, built (untrained) or loaded from ``options.run``, to check layer names."""
    from layerlab.train import adapters
    from layerlab.train.config import experiment_from_mapping

    if options.run:
        from layerlab.inference.trained import load_trained

        return load_trained(options.run).model
    from layerlab.data.prepare import input_signature

    cfg = experiment_from_mapping(merged(base, options.source))
    shape, classes = input_signature(cfg.data)  # from the config and headers (a CSV file is read)
    _, _, model = adapters.network_from_config(cfg.model, input_shape=shape, num_classes=classes)
    return model
