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

from layerlab.core.configtree import apply_override, from_mapping, setting, suggest, to_mapping
from layerlab.core.errors import ConfigError
from layerlab.core.mappingfile import read_mapping
from layerlab.data.config import DataConfig
from layerlab.train.curriculum import CurriculumConfig

PRECISIONS = ("32", "bf16", "16-mixed")  # train.precision (layerlab.train.precision)

MAX_EPOCHS = 1_000_000  # also the bound of every count of epochs (patience, step_size ...)
MAX_LR = 100.0


@dataclass
class ModelConfig:
    """The network: a preset with options, or an explicit list of layers; plus fine-tuning."""

    preset: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    layers: list[Any] | None = None
    init_from: str | None = None  # a run directory or a checkpoint file
    init_skip: list[str] = field(default_factory=list)  # layers init_from leaves fresh (a new head)
    freeze: list[str] = field(default_factory=list)  # layer names (or name prefixes) kept fixed
    lr_multipliers: dict[str, float] = setting(
        default_factory=dict, help="layer name prefix -> lr factor", minimum=0.0, maximum=1000.0
    )
    pretrained_lr_multiplier: float | None = setting(
        None, help="lr factor for every layer loaded by init_from", minimum=0.0, maximum=1000.0
    )

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
    step_size: int = setting(10, help="step: epochs between decays", minimum=1, maximum=MAX_EPOCHS)
    gamma: float = setting(0.1, help="step / plateau: decay factor", above=0.0, maximum=1.0)
    patience: int = setting(
        3, help="plateau: epochs without improvement before decaying", minimum=0, maximum=MAX_EPOCHS
    )
    min_lr: float = setting(0.0, help="cosine / plateau: floor", minimum=0.0, maximum=MAX_LR)

    def validate(self, where: str) -> None:
        if self.kind == "plateau" and self.gamma >= 1:
            raise ConfigError(
                f"a plateau schedule must lower the lr: gamma must be below 1, got {self.gamma}",
                hint="e.g. gamma: 0.1",
                where=f"{where}.gamma",
            )


@dataclass
class EarlyStoppingConfig:
    """Stop when ``metric`` has not improved for ``patience`` epochs (0 turns it off)."""

    metric: Literal["val_loss", "val_accuracy", "train_loss", "train_accuracy"] = "val_loss"
    patience: int = setting(0, help="epochs without improvement (0: off)", minimum=0, maximum=MAX_EPOCHS)
    min_delta: float = setting(0.0, help="the smallest change that counts", minimum=0.0, maximum=1e6)


@dataclass
class CodeL1Config:
    """A sparsity penalty ``weight * mean |h|`` on the activations ``h`` of the layer named ``layer``."""

    layer: str = ""
    weight: float = setting(1e-3, help="the penalty's factor", above=0.0, maximum=1e6)

    def validate(self, where: str) -> None:
        if not self.layer:
            raise ConfigError(
                "code_l1 needs the name of the code layer", hint="e.g. code_l1: {layer: code}", where=where
            )


@dataclass
class DistributedConfig:
    """Data-parallel training through torchrun: processes per node, nodes, the collective backend."""

    nproc_per_node: int = setting(
        1, help="training processes on each node (torchrun)", minimum=1, maximum=1024
    )
    nnodes: int = setting(1, help="nodes (machines) of the group", minimum=1, maximum=1024)
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: nccl on CUDA, gloo on the CPU

    @property
    def world_size(self) -> int:
        return self.nproc_per_node * self.nnodes


@dataclass
class SubspaceConfig:
    """Train in a random subspace: theta = theta0 + P theta_d (layerlab.train.subspace, docs/intrinsic-dimension.md)."""

    dim: int = setting(
        help="d: the trained directions (at most the network's parameter count)", minimum=1, maximum=2**31 - 1
    )
    projection: Literal["dense", "sparse", "fastfood"] = "fastfood"
    seed: int | None = setting(None, help="seeds P (None: the run's seed)", minimum=0, maximum=2**32 - 1)


@dataclass
class TrainConfig:
    """The optimization: epochs, batches, optimizer, loss, regularization, checkpoints."""

    epochs: int = setting(10, help="passes over the training split", minimum=1, maximum=MAX_EPOCHS)
    batch_size: int = setting(64, help="examples per step", minimum=1, maximum=1_000_000)
    optimizer: Literal["sgd", "rmsprop", "adam", "adamw"] = "adam"
    lr: float = setting(0.001, help="learning rate", above=0.0, maximum=MAX_LR)
    momentum: float = setting(0.9, help="sgd, rmsprop", minimum=0.0, below=1.0)
    nesterov: bool = False  # sgd
    weight_decay: float = setting(0.0, help="the optimizer's own decay", minimum=0.0, maximum=1000.0)
    task: Literal["classification", "regression", "reconstruction"] = setting(
        "classification", help="what the network predicts: class scores, values, or its own input"
    )
    loss: Literal["cross_entropy", "hinge", "squared_hinge", "mse", "l1", "huber", "bce"] = "cross_entropy"
    label_smoothing: float = setting(0.0, help="cross_entropy", minimum=0.0, maximum=1.0)
    hinge_margin: float = setting(1.0, help="hinge / squared_hinge: the margin delta", above=0.0, maximum=1e6)
    l1: float = setting(0.0, help="penalty added to the loss: l1 * sum |w|", minimum=0.0, maximum=1e6)
    l2: float = setting(
        0.0,
        help="penalty added to the loss: 1/2 * l2 * sum w^2 (separate from weight_decay)",
        minimum=0.0,
        maximum=1e6,
    )
    code_l1: CodeL1Config | None = None  # reconstruction: L1 penalty on a code layer's activations
    grad_clip: float | None = setting(None, help="max global gradient norm", above=0.0, maximum=1e12)
    curriculum: CurriculumConfig | None = None  # each epoch on the easiest fraction (train/curriculum.py)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    checkpoint_every: int = setting(
        1,
        help="epochs between numbered checkpoints (best and last are always kept)",
        minimum=1,
        maximum=MAX_EPOCHS,
    )
    keep_checkpoints: int = setting(
        0, help="numbered checkpoints kept (0 keeps all)", minimum=0, maximum=MAX_EPOCHS
    )
    num_threads: int | None = setting(
        None, help="torch CPU threads (None: torch's default)", minimum=1, maximum=1024
    )
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    sync_batchnorm: bool = False  # distributed: batch norms compute their statistics over all ranks
    precision: str = setting(
        "32", help="32 (float32), bf16 (autocast) or 16-mixed (float16 + grad scaler, CUDA)"
    )
    compile: bool = setting(False, help="torch.compile the network for the training steps")
    channels_last: bool | None = setting(
        None, help="channels-last memory format (None: on for CUDA networks with a 2-D convolution)"
    )
    subspace: SubspaceConfig | None = None  # intrinsic dimension: only theta_d (dim numbers) trains

    def validate(self, where: str) -> None:
        from layerlab.train.tasks import check_task_config

        check_task_config(self, where)
        if self.precision not in PRECISIONS:
            close = suggest(str(self.precision), PRECISIONS)
            hint = f"did you mean '{close}'? " if close else ""
            raise ConfigError(
                f"'{self.precision}' is not a precision",
                hint=f"{hint}choose one of: {', '.join(PRECISIONS)}",
                where=f"{where}.precision",
            )


@dataclass
class ExperimentConfig:
    """One experiment: everything needed to reproduce a run."""

    name: str | None = None
    seed: int = setting(0, help="seeds Python, NumPy and torch", minimum=0, maximum=2**32 - 1)
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
