"""The trainer's only doors into ``layerlab.nn`` and ``layerlab.data``: small functions tests can replace.

Everything here passes plain data (spec dicts, preprocessing dicts) across the boundary, so a
checkpoint alone is enough to rebuild a model and ready new data the way the run did.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import torch

from layerlab.data.config import AugmentConfig, DataConfig
from layerlab.train.config import ModelConfig


def prepare_data(cfg: DataConfig, *, seed: int, cache_dir: Path | None = None):
    """Load, split and normalize the data section: a ``PreparedData``."""
    from layerlab.data.prepare import prepare_data as prepare

    return prepare(cfg, seed=seed, cache_dir=cache_dir)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if hasattr(value, "to_dict"):
        return _plain(value.to_dict())
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def network_from_config(
    model_cfg: ModelConfig, *, input_shape, num_classes: int
) -> tuple[dict, Any, torch.nn.Module]:
    """Resolve the model section into ``(spec dict, shape summary as plain data, built module)``."""
    from layerlab.nn.build import build_network
    from layerlab.nn.resolve import network_for
    from layerlab.nn.shapes import summarize

    spec = network_for(model_cfg, input_shape=tuple(input_shape), num_classes=num_classes)
    return _plain(spec.to_dict()), _plain(summarize(spec)), build_network(spec)


def check_network(model_cfg: ModelConfig, data_cfg: DataConfig) -> None:
    """Check the network against the data's shape known from the config, before the data is imported."""
    from layerlab.nn.resolve import network_for_data

    network_for_data(model_cfg, data_cfg)


def network_from_dict(spec: dict) -> torch.nn.Module:
    """Rebuild a module from a stored spec dict (from network.json or a checkpoint)."""
    from layerlab.nn.build import build_network
    from layerlab.nn.spec import parse_network

    return build_network(parse_network(spec))


def inputs_on(x, device: torch.device):
    """A split's inputs on ``device``: tensors (and arrays) as float32 tensors; a data view
    (``layerlab.data.views.SplitView``, images read batch by batch) as the same view, whose batches
    land on ``device`` when indexed (the loop only indexes, takes ``len`` and reads ``.device``)."""
    if isinstance(x, torch.Tensor) or not hasattr(x, "materialize"):
        return torch.as_tensor(x).float().to(device)
    return x.to(device)


def make_augmenter(cfg: AugmentConfig):
    """A callable transforming a training batch, or None when augmentation is off."""
    if not cfg.enabled:
        return None
    from layerlab.data.augment import Augmenter

    return Augmenter(cfg)


def with_noise(augment, noise):
    """``augment`` followed by the corruption of ``data.noise`` when it is a mapping (a ``NoiseConfig``:
    denoising); a number (spiral's angle noise) or None leaves ``augment`` as it is."""
    from layerlab.data.config import NoiseConfig

    if not isinstance(noise, NoiseConfig):
        return augment
    from layerlab.data.noise import Corruptor

    return Corruptor(noise, augment)


def preprocessing_to_dict(preprocessing) -> dict:
    """The run's preprocessing as plain data (stored in preprocessing.json and checkpoints)."""
    return _plain(preprocessing.to_dict()) if preprocessing is not None else {}


def load_evaluation_data(source: str, preprocessing: dict, *, cache_dir: Path | None = None):
    """``(x, y, classes)`` for new data, readied with the run's stored preprocessing."""
    from layerlab.data.prepare import load_evaluation_data as load
    from layerlab.data.preprocess import Preprocessing

    return load(source, Preprocessing.from_dict(preprocessing), cache_dir=cache_dir)


def load_inputs(preprocessing: dict, paths: list[Path], *, names: list[str] | None = None) -> torch.Tensor:
    """Input files (images) as one batch, readied like the run's training data (errors say ``names``)."""
    from layerlab.data.preprocess import Preprocessing

    return Preprocessing.from_dict(preprocessing).load_images(paths, names=names)
