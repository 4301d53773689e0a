"""The ``data.video`` section: options of the video sources (clips of frames, (T, C, H, W) per example).

``repetition-counting`` generates clips of a shape moving back and forth k times; ``framefolder``
imports folders of frame images (one sub-folder per class, one per clip). Their limits are declared on
the fields; ``validate_video`` holds the checks that relate fields to each other and to the rest of
the data section. No source is imported here (``data.config`` imports this module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from layerlab.core.configtree import check_limits, setting
from layerlab.core.errors import ConfigError

VIDEO_SOURCES = ("repetition-counting", "framefolder")
MAX_FRAMES = 512
MAX_VIDEO_BYTES = 2 * 1024**3  # decoded uint8 clips of one generated set
MIN_FRAMES_PER_CYCLE = 4  # a back-and-forth seen in fewer frames aliases: nothing could count it


@dataclass
class VideoConfig:
    """Clips for repetition counting (``repetition-counting``) and the frame count of imported clips."""

    frames: int | None = setting(
        None,
        help="frames T per clip (generator: 16; framefolder: every clip must have it)",
        minimum=2,
        maximum=MAX_FRAMES,
    )
    size: int = setting(
        32, help="repetition-counting: side of the square frames, pixels", minimum=8, maximum=256
    )
    max_count: int = setting(
        4, help="repetition-counting: K, the most repetitions (classes 1..K)", minimum=2, maximum=32
    )
    clips_per_class: int = setting(
        100, help="repetition-counting: clips generated per count", minimum=1, maximum=100_000
    )
    noise: float = setting(
        0.05,
        help="repetition-counting: Gaussian pixel noise (intensities in [0, 1])",
        minimum=0.0,
        maximum=1.0,
    )
    shape: Literal["square", "disc", "random"] = "random"  # repetition-counting: the moving shape

    @property
    def steps(self) -> int:
        """T for the generator (16 unless set)."""
        return 16 if self.frames is None else int(self.frames)


def _fields(video: VideoConfig, where: str) -> None:
    import dataclasses

    for f in dataclasses.fields(video):
        check_limits(getattr(video, f.name), f.metadata, f.name, f"{where}.{f.name}")


def validate_video(cfg, where: str) -> None:
    """Checks of ``data.video`` against the source and the rest of ``cfg`` (a DataConfig)."""
    video = cfg.video
    if cfg.source not in VIDEO_SOURCES:
        if video is not None:
            raise ConfigError(
                f"data.video applies to the video sources ({', '.join(VIDEO_SOURCES)}), not {cfg.source}",
                hint="remove data.video, or use data.source=repetition-counting",
                where=f"{where}.video",
            )
        return
    video = video or VideoConfig()
    _fields(video, f"{where}.video")
    if cfg.source == "framefolder" and not cfg.path:
        raise ConfigError(
            "data source 'framefolder' needs a path",
            hint="set data.path to a folder with one sub-folder per class, one per clip inside",
            where=f"{where}.path",
        )
    if cfg.augment.enabled:
        raise ConfigError(
            "data.augment does not apply to video clips (it moves single images, not frames together)",
            hint="remove data.augment; data.video.noise adds pixel noise to generated clips",
            where=f"{where}.augment",
        )
    if cfg.source == "repetition-counting":
        for name in ("size", "channels"):
            if getattr(cfg, name) is not None:
                raise ConfigError(
                    f"data.{name} applies to image files; repetition-counting draws 1-channel frames",
                    hint=f"remove data.{name}; set the frame side with data.video.size",
                    where=f"{where}.{name}",
                )
        _check_generator(video, where)


def _check_generator(video: VideoConfig, where: str) -> None:
    needed = MIN_FRAMES_PER_CYCLE * video.max_count
    if video.steps < needed:
        raise ConfigError(
            f"{video.steps} frames cannot show {video.max_count} back-and-forth movements: each needs at "
            f"least {MIN_FRAMES_PER_CYCLE} frames",
            hint=f"use frames >= {needed} or max_count <= {video.steps // MIN_FRAMES_PER_CYCLE}",
            where=f"{where}.video",
        )
    total = video.clips_per_class * video.max_count * video.steps * video.size * video.size
    if total > MAX_VIDEO_BYTES:
        raise ConfigError(
            f"{video.clips_per_class} clips x {video.max_count} counts x {video.steps} frames of "
            f"{video.size}x{video.size} is {total / 1024**3:.1f} GiB, above the {MAX_VIDEO_BYTES // 1024**3} GiB limit",
            hint="use fewer clips_per_class, frames or a smaller size",
            where=f"{where}.video",
        )
