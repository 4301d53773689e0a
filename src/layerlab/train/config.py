"""The experiment config: ``seed``, ``data``, ``model`` and ``train`` sections, with defaults.

``load_experiment(path, overrides)`` reads YAML or JSON, applies ``--set key.path=value``
overrides and returns a checked ``ExperimentConfig``; ``model: {preset: mlp}`` alone
trains on spiral.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from layerlab.core.configtree import apply_override, from_mapping, to_mapping
from layerlab.core.errors import ConfigError
from layerlab.core.mappingfile import read_mapping
from layerlab.data.config import DataConfig


@dataclass
class ModelConfig:
    """The network: a preset with options, or an explicit list of layers; plus fine-tuning."""

    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    layers: list[Any] | None = None
    init_from: str | None = None  # a run directory or a checkpoint file
    freeze: list[str] = field(default_factory=list)  # layer names (or name prefixes) kept fixed
    lr_multipliers: dict[str, float] = field(default_factory=dict)  # layer name prefix -> lr factor
    pretrained_lr_multiplier: float | None = None  # lr factor for every layer loaded by init_from

    def __post_init__(self) -> None:
        if not self.preset and not self.layers:
            self.preset = "mlp"  # so that `model: {}` (or no model section) trains on spiral

    def validate(self, where: str) -> None:
        if self.preset and self.layers:
            raise ConfigError(
                "give either a preset or a list of layers, not both",
                hint="remove model.preset or model.layers",
                where=where,
            )


@dataclass
class ScheduleConfig:
    """Learning-rate schedule."""

    kind: Literal["none", "step", "cosine", "plateau"] = "none"
    step_size: int = 10  # step: epochs between decays
    gamma: float = 0.1  # step / plateau: decay factor
    patience: int = 3  # plateau: epochs without improvement before decaying
    min_lr: float = 0.0  # cosine / plateau: floor


@dataclass
class EarlyStoppingConfig:
    """Stop when ``metric`` has not improved for ``patience`` epochs (0 turns it off)."""

    metric: Literal["val_loss", "val_accuracy", "train_loss", "train_accuracy"] = "val_loss"
    patience: int = 0
    min_delta: float = 0.0


@dataclass
class TrainConfig:
    """The optimization: epochs, batches, optimizer, loss, regularization, checkpoints."""

    epochs: int = 10
    batch_size: int = 64
    optimizer: Literal["sgd", "rmsprop", "adam", "adamw"] = "adam"
    lr: float = 0.001
    momentum: float = 0.9  # sgd, rmsprop
    nesterov: bool = False  # sgd
    weight_decay: float = 0.0  # the optimizer's own decay
    loss: Literal["cross_entropy", "hinge", "squared_hinge", "mse"] = "cross_entropy"
    label_smoothing: float = 0.0  # cross_entropy
    hinge_margin: float = 1.0
    l1: float = 0.0  # penalty added to the loss: l1 * sum |w|
    l2: float = 0.0  # penalty added to the loss: l2 * sum w^2 (separate from weight_decay)
    grad_clip: float | None = None  # max global gradient norm
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint_every: int = 1  # epochs between numbered checkpoints (best and last are always kept)
    keep_checkpoints: int = 0  # numbered checkpoints kept (0 keeps all)
    num_threads: int | None = None  # torch CPU threads (None: torch's default)

    def validate(self, where: str) -> None:
        for name in ("epochs", "batch_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1", where=f"{where}.{name}")
        if self.lr <= 0:
            raise ConfigError(
                f"lr must be positive, got {self.lr}",
                hint="try 0.001 for adam, 0.01 for sgd",
                where=f"{where}.lr",
            )


@dataclass
class ExperimentConfig:
    """One experiment: everything needed to reproduce a run."""

    name: str | None = None
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        """Plain mapping (YAML/JSON ready) of the resolved config."""
        return to_mapping(self)


def parse_scalar(text: str) -> Any:
    """Parse the value of ``--set key=value`` as a YAML scalar (numbers, booleans, lists)."""
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def experiment_from_mapping(data: dict, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Check a raw mapping (plus ``--set`` overrides) and return the config."""
    data = json.loads(json.dumps(data))  # deep copy; overrides must not edit the caller's mapping
    for assignment in overrides:
        apply_override(data, assignment, parse_scalar)
    return from_mapping(ExperimentConfig, data)


def load_experiment(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """Load an experiment config file (or the defaults when ``path`` is None) with overrides."""
    data = read_mapping(path, what="a mapping (seed, data, model, train)") if path else {}
    return experiment_from_mapping(data, overrides)
