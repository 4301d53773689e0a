"""The CoordConv study (Liu et al. 2018): coordinate classification and regression on Not-so-Clevr.

Every (task, split, model) of the paper's supervised coordinate tasks, over seeds, as ordinary runs:

- classification (``data.target: index``): the (i, j) centre in, one logit per pixel of the 64x64
  canvas out. Models: ``coordconv`` (the pair tiled to a map, a 1x1 coordconv then 1x1 convs:
  uber-research's CoordConvPainter), ``deconv`` (the pair as a 1x1 map, six stride-2 transposed
  convolutions up to 64x64: its DeconvPainter), ``conv`` (the tiled pair through 3x3 convs, our
  plain baseline).
- regression (``data.target: coordinates``): the one-hot 64x64 image in, ``(i, j) / 64`` out.
  Models: ``coordconv`` (the official coordconv regressor: 1x1 and 3x3 convs, a max over the map)
  and ``conv`` (the official conv regressor: conv-pool blocks and a hidden layer). Each regression
  run is followed by a probe (``coordconv_pixels``) counting accuracy as the paper does: the
  prediction rounded to the right pixel on both axes, with the MSE beside it.

Splits: ``uniform`` (a seeded 20% of positions held out) and ``quadrant`` (the bottom-right
quadrant held out: the network must extrapolate). The report: train and test accuracy per split
(mean and Student-t interval over seeds), parameters, seconds, and the paper's figures beside ours.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from layerlab.core.configtree import setting, suggest
from layerlab.core.errors import ConfigError
from layerlab.research.base import ExperimentKind, Report, Trial, TrialResult, register_kind
from layerlab.research.probes import register_probe

Task = Literal["classification", "regression"]
Split = Literal["uniform", "quadrant"]
TASKS: tuple[str, ...] = ("classification", "regression")
SPLITS: tuple[str, ...] = ("uniform", "quadrant")
CLASSIFIERS: tuple[str, ...] = ("coordconv", "deconv", "conv")
REGRESSORS: tuple[str, ...] = ("coordconv", "conv")
MAX_SEEDS = 100
PIXELS_PROBE = "coordconv_pixels"
PROBE_SUFFIX = "pixels"
SOLVED = 0.99  # an accuracy at or above this counts as "100%" in the findings
NEAR_ZERO = 0.05  # and at or below this as "about 0%"
FITTED = 0.9  # a training accuracy at or above this counts as "fits the training set"

# The network and the training budget of each (task, model): the official architectures
# (uber-research/CoordConv model_builders.py) with budgets sized for a small shared CPU (the official
# ones, 100 to 2000 epochs, are for a GPU). The base config's train section gives everything else
# (threads, checkpoints ...); experiment.train and experiment.model_options change these per model.
MODELS: dict[tuple[str, str], dict] = {
    ("classification", "coordconv"): {  # the paper's [32, 32, 64, 64]: ~20x the CPU time
        "preset": "coordconv-classifier",
        "options": {"channels": [16, 16]},
        "train": {"epochs": 3, "optimizer": "adam", "lr": 0.01, "batch_size": 32},
    },
    ("classification", "deconv"): {  # the official widths (mul 1) and batch 16; it trained 2000 epochs
        "preset": "deconv-classifier",
        "options": {"channels": [64, 64, 64, 32, 32]},
        "train": {"epochs": 12, "optimizer": "adam", "lr": 0.01, "batch_size": 16},
    },
    ("classification", "conv"): {
        "preset": "conv-classifier",
        "options": {"channels": [8, 8]},
        "train": {"epochs": 3, "optimizer": "adam", "lr": 0.01, "batch_size": 32},
    },
    # regression: a cosine decay from lr 0.005 lands on the right pixel (measured: at a constant 0.01 one
    # seed of two stalled with its max on a corner and another ended 0.6 pixel off)
    ("regression", "coordconv"): {
        "preset": "coordconv-regressor",
        "options": {},
        "train": {
            "epochs": 4,
            "optimizer": "adam",
            "lr": 0.005,
            "batch_size": 32,
            "schedule": {"kind": "cosine"},
        },
    },
    ("regression", "conv"): {
        "preset": "conv-regressor",
        "options": {},
        "train": {
            "epochs": 5,
            "optimizer": "adam",
            "lr": 0.005,
            "batch_size": 32,
            "schedule": {"kind": "cosine"},
        },
    },
}
TASK_DATA = {
    "classification": {"target": "index"},
    # data.normalize stays standard: the hot pixel becomes about +64 and the rest about -0.016, so the
    # coordconv regressor's max over the map finds it from the start (with the raw 0/1 image, measured
    # here, the max sat on a corner and the MSE stayed at the variance of the targets)
    "regression": {"target": "coordinates"},
}
TASK_TRAIN = {
    "classification": {"task": "classification", "loss": "cross_entropy"},
    "regression": {"task": "regression", "loss": "mse"},
}
# The paper reports the trained network, not a validation pick: the weights evaluated at the end are
# those of the lowest training loss (normally the last epoch). The base or experiment.train may change it.
STUDY_TRAIN = {"early_stopping": {"metric": "train_loss"}}
FIXED_TRAIN = ("task", "loss")


def model_key(task: str, model: str) -> str:
    """``classification/deconv``: how experiment.train and experiment.model_options name a model."""
    return f"{task}/{model}"


def _check_unique(values: list, what: str, where: str, example: str) -> None:
    if not values:
        raise ConfigError(f"give at least one {what}", hint=f"e.g. {example}", where=where)
    if len(set(values)) != len(values):
        raise ConfigError(f"a {what} is given twice", hint=f"list each {what} once", where=where)


@dataclass
class CoordConvOptions:
    """Options of ``experiment: {kind: coordconv}``."""

    tasks: list[Task] = field(default_factory=lambda: list(TASKS))
    splits: list[Split] = field(default_factory=lambda: list(SPLITS))
    classifiers: list[Literal["coordconv", "deconv", "conv"]] = field(
        default_factory=lambda: list(CLASSIFIERS)
    )
    regressors: list[Literal["coordconv", "conv"]] = field(default_factory=lambda: list(REGRESSORS))
    seeds: list[int] = setting(
        default_factory=lambda: [0, 1, 2], help="each trial is repeated with these seeds", minimum=0,
        maximum=2**32 - 1,
    )  # fmt: skip
    level: float = setting(0.95, help="confidence level of the intervals", above=0.0, below=1.0)
    train: dict[str, dict] = field(default_factory=dict)  # "task/model" -> train settings over the defaults
    model_options: dict[str, dict] = field(default_factory=dict)  # "task/model" -> the preset's options

    def validate(self, where: str) -> None:
        _check_unique(self.tasks, "task", f"{where}.tasks", "tasks: [classification, regression]")
        _check_unique(self.splits, "split", f"{where}.splits", "splits: [uniform, quadrant]")
        if "classification" in self.tasks:
            _check_unique(self.classifiers, "classifier", f"{where}.classifiers", "classifiers: [coordconv]")
        if "regression" in self.tasks:
            _check_unique(self.regressors, "regressor", f"{where}.regressors", "regressors: [coordconv]")
        _check_unique(self.seeds, "seed", f"{where}.seeds", "seeds: [0, 1, 2]")
        if len(self.seeds) > MAX_SEEDS:
            raise ConfigError(f"at most {MAX_SEEDS} seeds, got {len(self.seeds)}", where=f"{where}.seeds")
        known = [model_key(task, model) for task, model in MODELS]
        for section in ("train", "model_options"):
            for key, value in getattr(self, section).items():
                if key not in known:
                    close = suggest(key, known)
                    hint = (
                        f"did you mean '{close}'?" if close else f"name a model as one of: {', '.join(known)}"
                    )
                    raise ConfigError(f"unknown model '{key}'", hint=hint, where=f"{where}.{section}")
                if not isinstance(value, dict):
                    raise ConfigError(
                        f"expected a mapping of settings, got {value!r}",
                        hint=f"e.g. {section}: {{classification/deconv: {{epochs: 40}}}}",
                        where=f"{where}.{section}.{key}",
                    )
        for key, value in self.train.items():
            for name in FIXED_TRAIN:
                if name in value:
                    raise ConfigError(
                        f"train.{name} is set by the task",
                        hint="remove it",
                        where=f"{where}.train.{key}.{name}",
                    )

    def grid(self) -> list[tuple[str, str, str]]:
        """Every (task, split, model) of the study, in the report's order."""
        models = {"classification": self.classifiers, "regression": self.regressors}
        return [
            (task, split, model) for task in self.tasks for split in self.splits for model in models[task]
        ]


def _merged(*layers: dict) -> dict:
    """The mappings merged left to right; a nested mapping (early_stopping, schedule) merges key by key."""
    out: dict = {}
    for layer in layers:
        for name, value in layer.items():
            if isinstance(value, dict) and isinstance(out.get(name), dict):
                out[name] = {**out[name], **value}
            else:
                out[name] = copy.deepcopy(value)
    return out


def trial_key(task: str, split: str, model: str, seed: int) -> str:
    return f"{task}/{split}/{model}/seed={seed}"


def trial_config(base: dict, options: CoordConvOptions, task: str, split: str, model: str, seed: int) -> dict:
    """The run config of one trial: the base's settings, the model's defaults, the user's changes."""
    defaults = MODELS[(task, model)]
    key = model_key(task, model)
    config = copy.deepcopy(base)
    data = {**TASK_DATA[task], **config.get("data", {})}
    data.update(source="not-so-clevr", task_split=split, target=TASK_DATA[task]["target"])
    train = _merged(STUDY_TRAIN, config.get("train", {}), defaults["train"], options.train.get(key, {}))
    train.update(TASK_TRAIN[task])
    preset_options = {**defaults["options"], **options.model_options.get(key, {})}
    config.update(
        seed=seed,
        data=data,
        model={"preset": defaults["preset"], "options": preset_options},
        train=train,
    )
    config["name"] = f"{base.get('name') or 'coordconv'}-{task}-{split}-{model}-seed{seed}"
    return config


def _check_model(task: str, model: str, options: CoordConvOptions) -> None:
    """The model's preset built with its options (a bad option name or value shows before any run)."""
    from layerlab.data.config import DataConfig
    from layerlab.data.signature import config_signature
    from layerlab.nn.presets import preset_spec

    defaults = MODELS[(task, model)]
    shape, outputs = config_signature(DataConfig(source="not-so-clevr", target=TASK_DATA[task]["target"]))
    preset_options = {**defaults["options"], **options.model_options.get(model_key(task, model), {})}
    try:
        preset_spec(defaults["preset"], input_shape=shape, num_classes=outputs, **preset_options)
    except ConfigError as exc:
        raise ConfigError(
            exc.message, hint=exc.hint, where=f"experiment.model_options.{model_key(task, model)}"
        ) from None


@register_kind
class CoordConvStudy(ExperimentKind):
    """The paper's models against the uniform and quadrant splits, over seeds."""

    name = "coordconv"
    Options = CoordConvOptions
    summary = (
        "Liu et al. 2018: CoordConv vs deconv and conv baselines on Not-so-Clevr, uniform and quadrant splits"
    )

    def validate(self, base: dict, options: CoordConvOptions) -> None:
        data = base.get("data") or {}
        if not isinstance(data, dict):
            return  # the run config's own checks answer
        if data.get("source", "not-so-clevr") != "not-so-clevr":
            raise ConfigError(
                f"the coordconv study runs on not-so-clevr, not {data['source']}",
                hint="set data.source: not-so-clevr, or leave data out",
                where="data.source",
            )
        for name, option in (("task_split", "splits"), ("target", "tasks")):
            if name in data:
                raise ConfigError(
                    f"data.{name} is set by the study for each trial",
                    hint=f"remove it and list what you want in experiment.{option}",
                    where=f"data.{name}",
                )
        if base.get("model"):
            raise ConfigError(
                "the coordconv study picks each trial's model",
                hint="remove the model section; change a model with experiment.model_options",
                where="model",
            )
        for name in FIXED_TRAIN:
            if name in (base.get("train") or {}):
                raise ConfigError(
                    f"train.{name} is set by each trial's task", hint="remove it", where=f"train.{name}"
                )
        for task, _split, model in options.grid():
            _check_model(task, model, options)

    def plan(self, base: dict, options: CoordConvOptions, done: Mapping[str, TrialResult]) -> list[Trial]:
        trials = []
        for task, split, model in options.grid():
            for seed in options.seeds:
                key = trial_key(task, split, model, seed)
                labels = {"task": task, "split": split, "model": model, "seed": seed}
                config = trial_config(base, options, task, split, model, seed)
                trials.append(Trial(key=key, config=config, labels=labels))
                if task == "regression":
                    trials.append(
                        Trial(
                            key=f"{key}/{PROBE_SUFFIX}",
                            config=config,
                            labels={**labels, "probe": PROBE_SUFFIX},
                            needs=(key,),
                            probe=PIXELS_PROBE,
                            probe_args={"run": key},
                        )
                    )
        return trials

    def report(self, base: dict, options: CoordConvOptions, results: Mapping[str, TrialResult]) -> Report:
        from layerlab.research.kinds.coordconv_report import build_report

        return build_report(base, options, results)


@register_probe(PIXELS_PROBE)
def coordconv_pixels(args: dict, inputs: Mapping[str, TrialResult], run_dir: Path, seed: int) -> dict:
    """Regression accuracy as the paper counts it, on the train and test splits of a finished run."""
    from layerlab.research.kinds.coordconv_eval import pixel_metrics_of_run

    run = inputs.get(args.get("run", ""))
    if run is None or run.run_dir is None:
        raise ConfigError(
            "the coordconv_pixels probe needs the finished regression run", where="probe_args.run"
        )
    return pixel_metrics_of_run(Path(run.run_dir))
