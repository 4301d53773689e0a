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
_engines: OrderedDict[int, tuple[object, object]] = OrderedDict()  # id(TrainedModel) -> (it, its Engine)


def trained_model(run: Run):
    """The run's best (else last) checkpoint as a model, cached by checkpoint path and mtime.

    The checkpoint is the local working copy, else a copy fetched from the storage (``runs.files``).
    """
    from layerlab.inference.trained import load_trained

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
    try:
        trained = load_trained(checkpoint, device="cpu")
    except LayerlabError as exc:  # the engine names the file by its path; the user knows the run
        folder, name = str(checkpoint.parent.parent), f"run {run.id}"
        raise type(exc)(
            without_folder(exc.message, folder, name),
            hint=exc.hint and without_folder(exc.hint, folder, name),
            where=exc.where and without_folder(exc.where, folder, name),
        ) from None
    with _lock:
        _cache[key] = trained
        while len(_cache) > MODEL_CACHE_SIZE:
            _cache.popitem(last=False)
    return trained


def serving_engine(trained):
    """The serving engine of a loaded run: ONNX Runtime checked against eager, else eager with the reason
    (``inference.onnx_engine``; the ``.onnx`` file is kept in the run's export/serving folder).

    Cached beside the model cache: one engine per loaded ``TrainedModel``.
    """
    from layerlab.inference.onnx_engine import load_engine

    with _lock:
        hit = _engines.get(id(trained))
        if hit is not None and hit[0] is trained:
            return hit[1]
    engine = load_engine(trained)
    with _lock:
        _engines[id(trained)] = (trained, engine)
        while len(_engines) > MODEL_CACHE_SIZE:
            _engines.popitem(last=False)
    return engine


def run_predict_engine(*, run: Run) -> dict:
    """``{"engine": "onnxruntime"}``, or ``{"engine": "eager", "engine_reason": ...}``: what answers for the run."""
    info = serving_engine(trained_model(run)).describe()
    return {key: info[key] for key in ("engine", "engine_reason") if key in info}


def probabilities(trained, x, top_k: int) -> list[dict]:
    """The top ``top_k`` classes and every class's probability per example, through the serving engine
    (``inference.onnx_engine.rank``; a bare model without a checkpoint goes through ``inference.predict``)."""
    from layerlab.inference.trained import TrainedModel

    if not isinstance(trained, TrainedModel):
        from layerlab.inference.predict import top_classes

        return top_classes(trained, x, top_k, probabilities=True)
    from layerlab.inference.onnx_engine import rank

    engine = serving_engine(trained)
    return rank(engine.run(x.numpy()), engine.classes, top_k, probabilities=True)


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


def upload_image_check(upload, limits) -> None:
    """Refuse an upload that is not an image or declares more pixels than the limit (header only)."""
    from PIL import Image

    from layerlab.data.limits import image_pixels_check

    try:
        upload.seek(0)
        with Image.open(upload) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise DataError(
            f"'{upload.name}' declares too many pixels",
            hint="send a smaller image, or raise LAYERLAB_MAX_IMAGE_PIXELS on the lab server",
            where="files",
        ) from None
    except Exception:
        raise DataError(
            f"'{upload.name}' is not an image that can be decoded",
            hint="send PNG, JPEG or another image",
            where="files",
        ) from None
    finally:
        upload.seek(0)
    try:
        image_pixels_check(width, height, upload.name, limits)
    except DataError as exc:
        raise DataError(exc.message, hint=exc.hint, where="files") from None


def run_predict_files(*, run: Run, files: list, top_k: int = 3) -> list[dict]:
    """Class probabilities for uploaded images (decoded with the run's size and channels).

    Every file is checked before anything is decoded: its size (LAYERLAB_UPLOAD_MAX_MB) and the
    pixels its header declares (LAYERLAB_MAX_IMAGE_PIXELS). Errors name the uploads, never the
    temporary files they are decoded from.
    """
    from django.conf import settings

    from layerlab.apps.datasets.limits import decode_limits
    from layerlab.train import adapters

    limit = settings.LAYERLAB_UPLOAD_MAX_BYTES
    limits = decode_limits()
    for upload in files:
        if upload.size > limit:
            raise DataError(
                f"'{upload.name}' is {upload.size} bytes, the limit is {limit}",
                hint="send a smaller file, or raise LAYERLAB_UPLOAD_MAX_MB on the lab server",
                where="files",
            )
        upload_image_check(upload, limits)
    trained = trained_model(run)
    names = [Path(upload.name).name for upload in files]
    with tempfile.TemporaryDirectory(prefix="layerlab-predict-") as tmp:
        paths = []
        for index, upload in enumerate(files):
            path = Path(tmp) / f"{index}-{names[index]}"
            with open(path, "wb") as handle:
                for chunk in upload.chunks():
                    handle.write(chunk)
            paths.append(path)
        try:
            x = adapters.load_inputs(trained.preprocessing, paths, names=names)
        except LayerlabError as exc:
            raise type(exc)(
                without_folder(exc.message, tmp),
                hint=exc.hint and without_folder(exc.hint, tmp),
                where=exc.where,
            ) from None
        except Exception as exc:  # a file that is not an image is bad input, not a server error
            reason = without_folder(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, tmp)
            raise DataError(f"cannot read the uploaded file as an image: {reason}", where="files") from None
    results = probabilities(trained, x, top_k)
    for upload, result in zip(files, results, strict=True):
        result["file"] = upload.name
    return results


def without_folder(text: str, folder: str, name: str = "") -> str:
    """``text`` with a server folder's path taken out (``name`` in its place: a server path is never shown)."""
    return text.replace(folder + "/", f"{name}: " if name else "").replace(folder, name)
