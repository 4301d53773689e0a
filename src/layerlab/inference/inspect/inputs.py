"""Input files for ``layerlab inspect`` readied like the run's data: an image, frames, or an array."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import DataError


def load_input(trained, paths: list[Path]) -> tuple[torch.Tensor, str]:
    """Input files readied like the run's data: ``(example or frames, name)``.

    One image is the example; several images are frames (in the order given). A ``.npy``/``.npz`` file
    (array ``X``, else the first) holds one example or frames (T first) in raw units (uint8, or floats
    in [0, 1] for images), normalized as in training. A run on clips (T, C, H, W) takes one clip: a
    folder of frame images or a ``.npy``/``.npz`` clip (``inference.frames.load_clips``).
    """
    from layerlab.inference.predict import IMAGE_SUFFIXES
    from layerlab.train import adapters

    if not paths:
        raise DataError("no input file given", hint="pass --input FILE", where="--input")
    if trained.preprocessing.get("kind") == "video":
        return _clip_input(trained, paths)
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        what = "is a folder, not a file" if Path(missing[0]).is_dir() else "does not exist"
        raise DataError(f"input file '{missing[0]}' {what}", hint="check the path", where="--input")
    name = paths[0].name if len(paths) == 1 else f"{paths[0].name} .. {paths[-1].name} ({len(paths)} frames)"
    if all(p.suffix.lower() in IMAGE_SUFFIXES for p in paths):
        if trained.preprocessing.get("kind") != "image":
            raise DataError(
                f"this run takes arrays of shape {list(trained.input_shape)}, not images",
                hint="give a .npy file holding one example",
                where="--input",
            )
        x = adapters.load_inputs(trained.preprocessing, paths)
        return (x[0] if len(x) == 1 else x), name
    if len(paths) != 1 or paths[0].suffix.lower() not in (".npy", ".npz"):
        raise DataError(
            "give one image, several images (frames) or one .npy/.npz array",
            hint=f"got {', '.join(p.name for p in paths)}",
            where="--input",
        )
    return _array_input(trained, paths[0]), name


def _array_input(trained, path: Path) -> torch.Tensor:
    from layerlab.data.preprocess import Preprocessing

    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            with np.load(path, allow_pickle=False) as archive:
                array = archive["X"] if "X" in archive.files else archive[archive.files[0]]
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DataError(f"cannot read an array from '{path.name}': {exc}", where="--input") from None
    shape = tuple(trained.input_shape)
    if not np.issubdtype(array.dtype, np.number):
        raise DataError(f"'{path.name}' holds {array.dtype} values, not numbers", where="--input")
    batch = array[None] if tuple(array.shape) == shape else array
    if batch.ndim != len(shape) + 1 or tuple(batch.shape[1:]) != shape or len(batch) == 0:
        raise DataError(
            f"'{path.name}' holds an array of shape {list(array.shape)}; this model takes {list(shape)} "
            f"(or frames [T, {', '.join(map(str, shape))}])",
            where="--input",
        )
    x = (
        Preprocessing.from_dict(trained.preprocessing).apply(batch)
        if trained.preprocessing
        else torch.as_tensor(batch)
    )
    x = torch.as_tensor(x).float()
    return x[0] if len(x) == 1 else x


def _clip_input(trained, paths: list[Path]) -> tuple[torch.Tensor, str]:
    """One clip of a video run (its frames are the trace's frames)."""
    from layerlab.inference.frames import load_clips

    if len(paths) != 1:
        raise DataError(
            f"this run takes one clip, got {len(paths)} inputs",
            hint="give a folder of frame images or one .npy/.npz clip",
            where="--input",
        )
    if not paths[0].exists():
        raise DataError(f"input '{paths[0]}' does not exist", hint="check the path", where="--input")
    clips, _names = load_clips(trained.preprocessing, paths)
    if len(clips) != 1:
        raise DataError(f"'{paths[0].name}' holds {len(clips)} clips; give one", where="--input")
    return clips[0], paths[0].name
