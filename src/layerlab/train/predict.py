"""Top-k class predictions of a trained run for input files."""

from __future__ import annotations

from pathlib import Path

import torch

from layerlab.core.errors import ConfigError, DataError
from layerlab.train import adapters
from layerlab.train.trained import load_trained


def predict_files(
    run: str | Path, files: list[str | Path], *, top_k: int = 3, device: str = "cpu"
) -> list[dict]:
    """For each file, the ``top_k`` most probable classes: ``{"file", "top": [{"class", "probability"}]}``.

    Args:
        run: a run directory (its best checkpoint) or a checkpoint file.
        files: input files (images, decoded with the run's size and channels).
        top_k: how many classes to list per file.
        device: ``auto``, ``cpu`` or ``cuda``.
    """
    if top_k < 1:
        raise ConfigError(f"--top-k must be at least 1, got {top_k}", where="--top-k")
    paths = [Path(f) for f in files]
    if not paths:
        raise DataError("no input files given", hint="pass --input FILE ...")
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise DataError(f"input file '{missing[0]}' does not exist", hint="check the path", where="--input")
    trained = load_trained(run, device=device)
    x = adapters.load_inputs(trained.preprocessing, paths).to(next(trained.model.parameters()).device)
    with torch.no_grad():
        probabilities = torch.softmax(trained.model(x).float(), dim=1)
    k = min(top_k, len(trained.classes))
    values, indices = probabilities.topk(k, dim=1)
    return [
        {
            "file": str(path),
            "top": [
                {"class": trained.classes[i], "probability": round(p, 6)}
                for p, i in zip(vals.tolist(), idx.tolist(), strict=True)
            ],
        }
        for path, vals, idx in zip(paths, values, indices, strict=True)
    ]
