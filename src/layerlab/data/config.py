"""The ``data`` section of an experiment config: where the examples come from and how they are split.

Every number is checked where it is read: its limits are declared once, on the field
(``setting(..., minimum=, maximum=, below=)``, checked by ``configtree.from_mapping``), and the
checks that relate two fields live in ``validate``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from layerlab.core.configtree import check_limits, setting
from layerlab.core.errors import ConfigError
from layerlab.data.select import SelectConfig
from layerlab.data.videoconfig import VIDEO_SOURCES, VideoConfig, validate_video

SOURCES = ("spiral", "digits", "mnist", "not-so-clevr", "imagefolder", "npz", "npy", "csv", *VIDEO_SOURCES)
ARRAY_SOURCES = ("npz", "npy", "csv")
LAYOUTS = ("auto", "image", "sequence", "flat")

MAX_CLASSES = 100_000  # generated class counts
MAX_POINTS = 1_000_000  # spiral points per class
MAX_SIDE = 4096  # image height / width after resizing
MAX_SHIFT = 1024  # augmentation pixels


def source_hint(name: str, suffix: str = "") -> str:
    """'did you mean ...?' for a near miss of a source name (imagefolde), else the list of sources.

    Args:
        suffix: added to the suggested name (``:path`` for the ``kind:path`` form).
    """
    import difflib

    # A strict cutoff: 'pics' is not a typo of 'csv'.
    close = difflib.get_close_matches(name, SOURCES, n=1, cutoff=0.75)
    return f"did you mean '{close[0]}{suffix}'?" if close else f"sources: {', '.join(SOURCES)}"


def check_fields(instance: object, where: str) -> None:
    """Check every field's declared limits (for instances built in Python, not through from_mapping)."""
    import dataclasses

    for f in dataclasses.fields(instance):  # type: ignore[arg-type]
        check_limits(getattr(instance, f.name), f.metadata, f.name, f"{where}.{f.name}" if where else f.name)


@dataclass
class SplitConfig:
    """How examples are divided into train / validation / test.

    ``random`` is stratified and seeded; ``ordered`` keeps natural file-name order and holds
    out the last fractions (neighbouring photos of one person stay together); ``group``
    keeps every group (a regex capture on the path) on one side.
    """

    method: Literal["random", "ordered", "group"] = "random"
    val: float = setting(0.15, help="validation fraction", minimum=0.0, below=1.0)
    test: float = setting(0.15, help="test fraction", minimum=0.0, below=1.0)
    group_pattern: str | None = None

    def validate(self, where: str) -> None:
        check_fields(self, where)
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

    shift: int = setting(
        0, help="random translation, in pixels, up to this many each way", minimum=0, maximum=MAX_SHIFT
    )
    crop: int = setting(
        0, help="random crop of this many pixels off each side, padded back", minimum=0, maximum=MAX_SHIFT
    )
    hflip: bool = False
    vflip: bool = False
    rotate: float = setting(0.0, help="degrees, uniform in [-rotate, rotate]", minimum=0.0, maximum=180.0)
    brightness: float = setting(0.0, help="multiplicative jitter in [1 - b, 1 + b]", minimum=0.0, below=1.0)
    noise: float = setting(
        0.0, help="Gaussian noise standard deviation (normalized units)", minimum=0.0, maximum=10.0
    )

    def validate(self, where: str) -> None:
        check_fields(self, where)

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
class NoiseConfig:
    """Corruption of training inputs (a denoising autoencoder's): never of validation or test.

    ``gaussian`` adds N(0, sigma^2) to every value; ``masking`` sets a random ``fraction`` of the values to
    0; ``salt_pepper`` sets a ``fraction`` to the low or the high end (``clip``, else the batch's minimum
    and maximum), half each. ``clip: [low, high]`` bounds the corrupted input.
    """

    kind: Literal["gaussian", "masking", "salt_pepper"] = "gaussian"
    sigma: float = setting(0.1, help="gaussian: standard deviation", above=0.0, maximum=100.0)
    fraction: float = setting(
        0.25, help="masking / salt_pepper: fraction of the values corrupted", above=0.0, maximum=1.0
    )
    clip: list[float] | None = None

    def validate(self, where: str) -> None:
        check_fields(self, where)
        if self.clip is not None and (len(self.clip) != 2 or not self.clip[0] < self.clip[1]):
            raise ConfigError(
                f"clip must be [low, high] with low below high, got {self.clip}",
                hint="e.g. clip: [0, 1] for pixels in [0, 1]",
                where=f"{where}.clip",
            )


@dataclass
class DataConfig:
    """Where examples come from, how they are decoded, normalized, split and augmented."""

    source: str = "spiral"
    path: str | None = None
    # generators
    classes: int | None = setting(None, help="spiral: number of classes (3)", minimum=2, maximum=MAX_CLASSES)
    points_per_class: int | None = setting(
        None, help="spiral: points per class (100)", minimum=1, maximum=MAX_POINTS
    )
    # a number: spiral's angle noise (0.2); a mapping: corruption of training inputs (denoising)
    noise: NoiseConfig | float | None = setting(
        None, help="spiral: angle noise (0.2); or {kind, sigma | fraction, clip}", minimum=0.0, maximum=10.0
    )
    task_split: Literal["uniform", "quadrant"] = "uniform"  # not-so-clevr
    # not-so-clevr: index = coordinate classification ((i, j) in, the pixel's class out);
    # coordinates = coordinate regression (the one-hot 64x64 image in, (i, j)/64 out: train.task regression)
    target: Literal["index", "coordinates"] = "index"
    # images
    size: list[int] | None = setting(
        None, help="[height, width] images are resized to", minimum=1, maximum=MAX_SIDE
    )
    channels: int | None = None  # 1 grayscale, 3 RGB
    # arrays
    layout: Literal["auto", "image", "sequence", "flat"] = "auto"  # npz/npy/csv: how X's axes are read
    steps: int | None = setting(None, help="layout sequence: time steps T of a flat row (csv)", minimum=1)
    label_column: str | int | None = None  # csv: name or index of the label column (last by default)
    label_map: dict[str, int] | None = setting(None, help="stored label -> class index", minimum=0)
    class_names: list[str] | None = None
    limit: int | None = setting(None, help="use at most this many examples", minimum=1)
    select: SelectConfig | None = None  # some classes / a range in file order (data/select.py)
    label_noise: float = setting(
        0.0, help="fraction of training labels set to another class (seeded)", minimum=0.0, below=1.0
    )
    ignore_columns: list[str] | None = None  # csv: columns that are not features (e.g. a curriculum score)
    normalize: Literal["standard", "none", "unit"] = "standard"
    video: VideoConfig | None = None  # repetition-counting / framefolder clips (data/videoconfig.py)
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def validate(self, where: str) -> None:
        check_fields(self, where)
        if self.source not in SOURCES:
            raise ConfigError(
                f"unknown data source '{self.source}'", hint=source_hint(self.source), where=f"{where}.source"
            )
        if self.source in ("imagefolder", "npz", "npy", "csv") and not self.path:
            raise ConfigError(
                f"data source '{self.source}' needs a path",
                hint="set data.path, e.g. --set data.path=/data/photos",
                where=f"{where}.path",
            )
        validate_video(self, where)
        if self.channels is not None and self.channels not in (1, 3):
            raise ConfigError(f"channels must be 1 or 3, not {self.channels}", where=f"{where}.channels")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 1):
            raise ConfigError(f"size must be [height, width], got {self.size}", where=f"{where}.size")
        if self.class_names is not None and len(self.class_names) < 2:
            raise ConfigError(
                f"class_names lists {len(self.class_names)} class(es); a classifier needs at least 2",
                where=f"{where}.class_names",
            )
        if self.layout != "auto" and self.source not in ARRAY_SOURCES:
            raise ConfigError(
                f"layout applies to array sources ({', '.join(ARRAY_SOURCES)}), not {self.source}",
                hint="remove data.layout",
                where=f"{where}.layout",
            )
        if self.target != "index" and self.source != "not-so-clevr":
            raise ConfigError(
                f"target '{self.target}' applies to the not-so-clevr source, not {self.source}",
                hint="remove data.target, or use data.source=not-so-clevr",
                where=f"{where}.target",
            )
        if self.ignore_columns and self.source != "csv":
            raise ConfigError("ignore_columns applies to csv sources", where=f"{where}.ignore_columns")
        if self.steps is not None and self.layout != "sequence":
            raise ConfigError("steps applies to layout: sequence", where=f"{where}.steps")
        crop = self.augment.crop
        if self.size is not None and crop and 2 * crop >= min(self.size):
            raise ConfigError(
                f"crop {crop} cuts {2 * crop} pixels off a side of {min(self.size)}: nothing is left",
                hint=f"keep 2 * crop below {min(self.size)}",
                where=f"{where}.augment.crop",
            )
