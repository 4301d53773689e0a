"""The ``data`` section of an experiment config: where the examples come from and how they are split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from layerlab.core.errors import ConfigError

SOURCES = ("spiral", "digits", "not-so-clevr", "imagefolder", "npz", "npy", "csv")


@dataclass
class SplitConfig:
    """How examples are divided into train / validation / test.

    ``random`` is stratified and seeded; ``ordered`` keeps natural file-name order and holds
    out the last fractions (neighbouring photos of one person stay together); ``group``
    keeps every group (a regex capture on the path) on one side.
    """

    method: Literal["random", "ordered", "group"] = "random"
    val: float = 0.15
    test: float = 0.15
    group_pattern: str | None = None

    def validate(self, where: str) -> None:
        for name in ("val", "test"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"fraction {value} is outside [0, 1)", where=f"{where}.{name}")
        if self.val + self.test >= 1.0:
            raise ConfigError(
                f"val + test = {self.val + self.test:.2f} leaves nothing to train on",
                hint="keep val + test below 1, e.g. 0.15 each",
                where=where,
            )
        if self.group_pattern:
            import re

            try:
                re.compile(self.group_pattern)
            except re.error as exc:
                raise ConfigError(
                    f"group_pattern is not a valid regex: {exc}", where=f"{where}.group_pattern"
                ) from None
        if self.method == "group" and not self.group_pattern:
            raise ConfigError(
                "split method 'group' needs group_pattern",
                hint=r"e.g. group_pattern: '(\d+)_' captures the person id in the file name",
                where=where,
            )


@dataclass
class AugmentConfig:
    """On-the-fly augmentation of training batches (never of validation or test)."""

    shift: int = 0  # random translation, in pixels, up to this many each way
    crop: int = 0  # random crop of this many pixels off each side, padded back
    hflip: bool = False
    vflip: bool = False
    rotate: float = 0.0  # degrees, uniform in [-rotate, rotate]
    brightness: float = 0.0  # multiplicative jitter in [1 - b, 1 + b]
    noise: float = 0.0  # Gaussian noise standard deviation (in normalized units)

    @property
    def enabled(self) -> bool:
        return bool(
            self.shift
            or self.crop
            or self.hflip
            or self.vflip
            or self.rotate
            or self.brightness
            or self.noise
        )


@dataclass
class DataConfig:
    """Where examples come from, how they are decoded, normalized, split and augmented."""

    source: str = "spiral"
    path: str | None = None
    # generators
    classes: int | None = None  # spiral: number of classes (3)
    points_per_class: int | None = None  # spiral: points per class (100)
    noise: float | None = None  # spiral: noise (0.2)
    task_split: Literal["uniform", "quadrant"] = "uniform"  # not-so-clevr
    # images
    size: list[int] | None = None  # [height, width] images are resized to
    channels: int | None = None  # 1 grayscale, 3 RGB
    # arrays
    label_column: str | int | None = None  # csv: name or index of the label column (last by default)
    label_map: dict[str, int] | None = None  # npz/npy/csv: stored label -> class index
    class_names: list[str] | None = None
    limit: int | None = None  # use at most this many examples (quick tries, tests)
    normalize: Literal["standard", "none", "unit"] = "standard"
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self, where: str) -> None:
        if self.source not in SOURCES:
            from layerlab.core.configtree import suggest

            close = suggest(self.source, SOURCES)
            hint = f"did you mean '{close}'?" if close else f"choose one of: {', '.join(SOURCES)}"
            raise ConfigError(f"unknown data source '{self.source}'", hint=hint, where=f"{where}.source")
        if self.source in ("imagefolder", "npz", "npy", "csv") and not self.path:
            raise ConfigError(
                f"data source '{self.source}' needs a path",
                hint="set data.path, e.g. --set data.path=/data/photos",
                where=f"{where}.path",
            )
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, not {self.channels}", where=f"{where}.channels")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ConfigError(f"size must be [height, width], got {self.size}", where=f"{where}.size")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"limit must be at least 1, not {self.limit}", where=f"{where}.limit")
