"""The ``framefolder`` importer: clips stored as folders of frame images.

Layout: ``PATH/<class>/<clip>/<frame files>``, one sub-folder per class (natural order gives the class
indices, as ``imagefolder``), one sub-folder per clip inside it, the clip's frames in natural name order
(``frame_2.png`` before ``frame_10.png``). Every clip must have the same number of frames T (or
``data.video.frames`` when it is set). Frames are decoded like ``imagefolder``'s images (``data.size``,
``data.channels``) into uint8 ``(N, T, C, H, W)``; a clip with a frame that cannot be decoded is skipped
with the reason. The path checks are ``imagefolder``'s own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from layerlab.core.errors import DataError
from layerlab.data.config import DataConfig
from layerlab.data.decode import decode_many
from layerlab.data.sources.base import RawData, natural_key
from layerlab.data.sources.imagefolder import _check_root, class_folders, image_channels, image_size


@dataclass
class ClipListing:
    """The classes of a frame folder and its clips: (clip path relative to root, class index, frame files)."""

    root: Path
    classes: list[str]
    clips: list[tuple[str, int, list[str]]]
    stats: list[tuple[str, int, int]]  # (frame path relative to root, size, mtime_ns), for the cache key

    @property
    def frames(self) -> int:
        return len(self.clips[0][2])


def _entries(folder: Path) -> tuple[list[str], list[str]]:
    """(sub-folders, files) of ``folder``, hidden ones left out, each in natural order."""
    with os.scandir(folder) as entries:
        items = [e for e in entries if not e.name.startswith(".")]
    dirs = sorted((e.name for e in items if e.is_dir()), key=natural_key)
    files = sorted((e.name for e in items if not e.is_dir()), key=natural_key)
    return dirs, files


def _frame_files(root: Path, clip: str) -> tuple[list[str], list[tuple[str, int, int]]]:
    _, files = _entries(root / clip)
    stats = []
    for name in files:
        rel = f"{clip}/{name}"
        try:
            stat = os.stat(root / rel)
        except OSError:
            raise DataError(
                f"'{rel}' is a broken link or cannot be read",
                hint="remove it from the clip folder, or point the link at an existing file",
            ) from None
        stats.append((rel, stat.st_size, stat.st_mtime_ns))
    return files, stats


def list_framefolder(path: str | None, frames: int | None = None) -> ClipListing:
    """Every clip folder under each class folder; a DataError naming the first clip that breaks the layout.

    Args:
        path: data.path (checked as imagefolder checks it).
        frames: the frame count every clip must have (default: the first clip's).
    """
    root = _check_root(path)
    classes = class_folders(path)
    clips: list[tuple[str, int, list[str]]] = []
    stats: list[tuple[str, int, int]] = []
    for index, name in enumerate(classes):
        dirs, loose = _entries(root / name)
        if loose:
            raise DataError(
                f"class folder '{name}' holds files ({', '.join(loose[:3])}) directly",
                hint=f"framefolder needs one sub-folder per clip: {name}/<clip>/<frames>",
                where=path,
            )
        for clip in dirs:
            rel = f"{name}/{clip}"
            files, clip_stats = _frame_files(root, rel)
            if not files:
                raise DataError(
                    f"clip folder '{rel}' holds no frames", hint="remove it or add its frames", where=path
                )
            expected = frames if frames is not None else (len(clips[0][2]) if clips else len(files))
            if len(files) != expected:
                first = (
                    f"'{clips[0][0]}' has {expected}"
                    if clips and frames is None
                    else f"data.video.frames is {expected}"
                )
                raise DataError(
                    f"clip '{rel}' has {len(files)} frames but {first}; every clip needs the same number T",
                    hint="trim or pad the clips to one length (or set data.video.frames and fix the others)",
                    where=path,
                )
            clips.append((rel, index, files))
            stats.extend(clip_stats)
    if not clips:
        raise DataError(
            f"the class folders of '{path}' hold no clip folders",
            hint="put each clip's frames in its own folder: <class>/<clip>/<frame files>",
        )
    return ClipListing(root=root, classes=classes, clips=clips, stats=stats)


def load_framefolder(cfg: DataConfig, *, listing: ClipListing | None = None) -> RawData:
    """Decode every clip; those with a frame that cannot be decoded are skipped (with the reason)."""
    frames = cfg.video.frames if cfg.video is not None else None
    listing = listing or list_framefolder(cfg.path, frames)
    size, channels = image_size(cfg), image_channels(cfg)
    steps = listing.frames
    x = np.empty((len(listing.clips), steps, channels, *size), dtype=np.uint8)
    kept: list[int] = []
    skipped: list[tuple[str, str]] = []
    for i, (rel, _, files) in enumerate(listing.clips):
        paths = [listing.root / rel / name for name in files]
        images, decoded, failed = decode_many(paths, size, channels, workers=1)
        if failed:
            bad, reason = failed[0]
            skipped.append((rel, f"frame {files[bad]}: {reason}"))
            continue
        x[len(kept)] = images  # decoded in order: nothing failed
        kept.append(i)
    if not kept:
        raise DataError(
            f"none of the {len(listing.clips)} clips in '{cfg.path}' could be decoded (first: {skipped[0][0]}: {skipped[0][1]})",
            hint="the clip folders should hold images (PNG, JPEG ...)",
        )
    return RawData(
        x=x[: len(kept)],
        y=np.array([listing.clips[i][1] for i in kept], dtype=np.int64),
        classes=list(listing.classes),
        kind="video",
        paths=[listing.clips[i][0] for i in kept],
        skipped=skipped,
        named_classes=True,
    )


def framefolder_fingerprint(cfg: DataConfig, options: dict) -> dict:
    """``options`` plus what the decoded clips depend on: the frames (names, content digest), size, channels."""
    from layerlab.data.cache import content_digest  # cache imports this package's RawData

    frames = cfg.video.frames if cfg.video is not None else None
    listing = list_framefolder(cfg.path, frames)
    options.update(
        size=list(image_size(cfg)),
        channels=image_channels(cfg),
        root=str(listing.root.resolve()),
        clips=[[rel, label] for rel, label, _ in listing.clips],
        frames=[[rel, size, mtime] for rel, size, mtime in listing.stats],
    )
    options["content"] = content_digest([(rel, listing.root / rel) for rel, *_ in listing.stats])
    return options


def video_signature(cfg: DataConfig) -> tuple[tuple[int, ...], int]:
    """``((T, C, H, W), classes)`` of a video source, from the config (generator) or the listing (folders)."""
    from layerlab.data.videoconfig import VideoConfig

    video = cfg.video or VideoConfig()
    if cfg.source == "repetition-counting":
        return (video.steps, 1, video.size, video.size), video.max_count
    listing = list_framefolder(cfg.path, video.frames)
    if len(listing.classes) < 2:
        raise DataError(
            f"framefolder:{cfg.path} gives one class ({listing.classes[0]}); a classifier needs at least 2",
            hint="point data.path at the folder that holds one sub-folder per class (at least 2)",
        )
    return (listing.frames, image_channels(cfg), *image_size(cfg)), len(listing.classes)
