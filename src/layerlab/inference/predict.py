"""Top-k class predictions of a trained run: for a batch (``top_classes``, the lab's predict endpoint too)
and for input files (``predict_files``, ``layerlab predict``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import ConfigError, DataError
from layerlab.inference.trained import TrainedModel, load_trained
from layerlab.train import adapters

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def predict_files(
    run: str | Path, files: list[str | Path], *, top_k: int = 3, device: str = "cpu"
) -> list[dict]:
    """For each file, the ``top_k`` most probable classes: ``{"file", "top": [{"class", "probability"}]}``.

    Args:
        run: a run directory (its best checkpoint) or a checkpoint file.
        files: input files: images (decoded with the run's size and channels), or for a run on
            vectors .csv/.npy/.npz files whose every row is one example (named ``file:row``), or for
            a run on video clip folders of frames or .npy/.npz clip arrays (``frames.load_clips``).
        top_k: how many classes to list per file.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}", where="--top-k")
    paths = [Path(f) for f in files]
    if not paths:
        raise DataError("no input files given", hint="pass --input FILE ...")
    missing = [str(p) for p in paths if not p.is_file() and not p.is_dir()]
    if missing:
        raise DataError(f"input file '{missing[0]}' does not exist", hint="check the path", where="--input")
    trained = load_trained(run, device=device)
    kind = trained.preprocessing.get("kind")
    folders = [str(p) for p in paths if p.is_dir()]
    if folders and kind != "video":
        raise DataError(
            f"'{folders[0]}' is a folder", hint="give the input files themselves", where="--input"
        )
    if kind == "video":  # clip folders of frames, or .npy / .npz clip arrays
        from layerlab.inference.frames import load_clips

        x, names = load_clips(trained.preprocessing, paths)
    elif kind == "vector":
        x, names = _vector_rows(trained.preprocessing, paths)
    else:
        x, names = adapters.load_inputs(trained.preprocessing, paths), [str(p) for p in paths]
    results = top_classes(trained, x, top_k) if run_task(trained).classifies else predicted_values(trained, x)
    return [{"file": str(name), **result} for name, result in zip(names, results, strict=True)]


def run_task(trained: TrainedModel):
    """The ``layerlab.train.tasks.Task`` a trained run learned (classification for older runs)."""
    from layerlab.train.tasks import task_of

    return task_of((getattr(trained, "config", None) or {}).get("train") or {})


def predicted_values(trained: TrainedModel, x: torch.Tensor) -> list[dict]:
    """Per example of ``x`` (preprocessed): a regression's ``{"values": {name: value}}``, or a
    reconstruction's ``{"reconstruction": nested lists of the input's shape, "mse": against the input}``."""
    task = run_task(trained)
    x = x.to(next(trained.model.parameters()).device)
    with torch.no_grad():
        out = task.output(trained.model(x).float())
    if task.name == "regression":
        names = list(trained.classes)
        return [
            {"values": dict(zip(names, (round(v, 6) for v in row.tolist()), strict=False))} for row in out
        ]
    errors = ((out - x.float()) ** 2).reshape(len(x), -1).mean(1)
    return [
        {"reconstruction": row.cpu().tolist(), "mse": round(float(e), 6)}
        for row, e in zip(out, errors, strict=True)
    ]


def top_classes(
    trained: TrainedModel, x: torch.Tensor, top_k: int, *, probabilities: bool = False
) -> list[dict]:
    """Per example of the batch ``x`` (already preprocessed): ``{"top": [{"class", "probability"}]}``,
    the ``top_k`` most probable classes, plus every class's probability with ``probabilities``."""
    task = run_task(trained)
    if not task.classifies:
        raise ConfigError(
            f"this is a {task.name} run: it has no classes to rank",
            hint="`layerlab predict RUN --input FILE` prints its values / reconstructions",
        )
    x = x.to(next(trained.model.parameters()).device)
    with torch.no_grad():
        probs = torch.softmax(trained.model(x).float(), dim=1)
    k = min(top_k, len(trained.classes))
    values, indices = probs.topk(k, dim=1)
    results = []
    for vals, idx, row in zip(values, indices, probs, strict=True):
        result = {
            "top": [
                {"class": trained.classes[i], "probability": round(p, 6)}
                for p, i in zip(vals.tolist(), idx.tolist(), strict=True)
            ]
        }
        if probabilities:
            result["probabilities"] = [round(p, 6) for p in row.tolist()]
        results.append(result)
    return results


def _read_rows(path: Path) -> np.ndarray:
    """The numeric rows of one .npy, .npz (array X, else the first) or .csv/.txt file (a header is skipped)."""
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                array = archive["X"] if "X" in archive.files else archive[archive.files[0]]
        else:
            with open(path, encoding="utf-8") as handle:
                lines = [line for line in handle.read().splitlines() if line.strip()]
            try:
                float(lines[0].replace(",", " ").split()[0]) if lines else None
            except ValueError:
                lines = lines[1:]  # a header row
            array = np.loadtxt(lines, delimiter="," if lines and "," in lines[0] else None, ndmin=2)
    except (ValueError, OSError, KeyError, IndexError) as exc:
        raise DataError(
            f"cannot read numeric rows from '{path}': {str(exc).splitlines()[0] if str(exc) else exc}",
            hint="give .csv (one example per row), .npy or .npz (array X) files",
            where="--input",
        ) from None
    array = np.asarray(array, dtype=np.float32)
    return array if array.ndim > 1 else array[None]


def _vector_rows(preprocessing: dict, paths: list[Path]) -> tuple[torch.Tensor, list[str]]:
    """Every row of every file as one batch (normalized as in training), and a name per row."""
    from layerlab.data.preprocess import Preprocessing

    if any(p.suffix.lower() in IMAGE_SUFFIXES for p in paths):
        raise DataError(
            "this run takes vectors, not images",
            hint="give .csv (one example per row), .npy or .npz files",
            where="--input",
        )
    pre = Preprocessing.from_dict(preprocessing)
    arrays, names = [], []
    for path in paths:
        rows = _read_rows(path)
        if tuple(rows.shape[1:]) != tuple(pre.input_shape):
            raise DataError(
                f"'{path}' holds rows of shape {tuple(rows.shape[1:])} but this run takes {tuple(pre.input_shape)}",
                hint="give one example per row with the columns the run was trained on (no label column)",
                where="--input",
            )
        arrays.append(rows)
        names += [str(path)] if len(rows) == 1 else [f"{path}:{i + 1}" for i in range(len(rows))]
    return pre.apply(np.concatenate(arrays)), names
