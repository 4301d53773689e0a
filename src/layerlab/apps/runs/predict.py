"""Predictions of a run's best checkpoint for uploaded images or sent arrays; loaded models are cached."""

from __future__ import annotations

import tempfile
import threading
from collections import OrderedDict
from pathlib import Path

from layerlab.apps.runs.files import run_checkpoint_local
from layerlab.apps.runs.models import Run
from layerlab.core.errors import DataError, LayerlabError

MODEL_CACHE_SIZE = 8
_cache: OrderedDict[tuple[str, str, float], object] = OrderedDict()
_lock = threading.Lock()


def trained_model(run: Run):
    """The run's best (else last) checkpoint as a model, cached by checkpoint path and mtime.

    The checkpoint is the local working copy, else a copy fetched from the storage (``runs.files``).
    """
    from layerlab.train.trained import load_trained

    if not run.run_dir and run.origin != Run.Origin.SERVER:
        raise LayerlabError(
            f"run {run.id} has no run directory", hint="predict with a run trained by the lab"
        )
    checkpoint = run_checkpoint_local(run=run)
    key = (str(run.id), str(checkpoint), checkpoint.stat().st_mtime)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    trained = load_trained(checkpoint, device="cpu")
    with _lock:
        _cache[key] = trained
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
    return trained


def probabilities(trained, x, top_k: int) -> list[dict]:
    import torch

    with torch.no_grad():
        probs = torch.softmax(trained.model(x).float(), dim=1)
    k = min(top_k, len(trained.classes))
    values, indices = probs.topk(k, dim=1)
    return [
        {
            "top": [
                {"class": trained.classes[i], "probability": round(p, 6)}
                for p, i in zip(v.tolist(), ix.tolist(), strict=True)
            ],
            "probabilities": [round(p, 6) for p in row.tolist()],
        }
        for v, ix, row in zip(values, indices, probs, strict=True)
    ]


def run_predict_arrays(*, run: Run, inputs: list, top_k: int = 3) -> list[dict]:
    """Class probabilities for raw examples (the run's own preprocessing is applied).

    Args:
        inputs: a list of examples, each shaped like one raw example of the run's data.
        top_k: classes listed per example.
    """
    import numpy as np

    from layerlab.data.preprocess import Preprocessing

    trained = trained_model(run)
    preprocessing = Preprocessing.from_dict(trained.preprocessing)
    try:
        array = np.asarray(inputs, dtype=np.float32)
        x = preprocessing.apply(array)
        return probabilities(trained, x, top_k)
    except (ValueError, RuntimeError) as exc:
        raise DataError(
            f"inputs of shape {list(np.shape(inputs))} do not fit the run's input {list(trained.input_shape)}: "
            f"{str(exc).splitlines()[0]}",
            where="inputs",
        ) from None


def run_predict_files(*, run: Run, files: list, top_k: int = 3) -> list[dict]:
    """Class probabilities for uploaded images (decoded with the run's size and channels)."""
    from django.conf import settings

    from layerlab.train import adapters

    limit = settings.LAYERLAB_UPLOAD_MAX_BYTES
    for upload in files:
        if upload.size > limit:
            raise DataError(f"'{upload.name}' is {upload.size} bytes, the limit is {limit}", where="files")
    trained = trained_model(run)
    with tempfile.TemporaryDirectory(prefix="layerlab-predict-") as tmp:
        paths = []
        for index, upload in enumerate(files):
            path = Path(tmp) / f"{index}-{Path(upload.name).name}"
            with open(path, "wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            paths.append(path)
        try:
            x = adapters.load_inputs(trained.preprocessing, paths)
        except LayerlabError:
            raise
        except Exception as exc:  # a file that is not an image is bad input, not a server error
            raise DataError(f"cannot read the uploaded file as an image: {exc}", where="files") from None
    results = probabilities(trained, x, top_k)
    for upload, result in zip(files, results, strict=True):
        result["file"] = upload.name
    return results
