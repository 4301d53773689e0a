"""A confusion-matrix cell's test examples: thumbnails of the images of class i the run predicted as j.

Reads the run's ``test_predictions.npz`` (written by the engine with the summary) and rebuilds
the few test examples asked for from the run's data section and seed; at most ``MAX_PER_CELL``.
"""

from __future__ import annotations

import base64
import io

from django.conf import settings
from django.core.files.storage import default_storage

from layerlab.apps.runs.files import run_file_local, run_file_name, run_working_dir
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.references import run_data_check, run_error_text
from layerlab.core.errors import LayerlabError
from layerlab.core.runlayout import TEST_PREDICTIONS

MAX_PER_CELL = 24
THUMBNAIL = 64  # pixels, the longer side
MAX_VALUES = 16  # features shown for a vector example
PREDICTIONS = TEST_PREDICTIONS


class GalleryError(LayerlabError):
    """The cell's examples cannot be shown (no per-example predictions, changed data, bad cell)."""

    kind = "gallery_error"


def run_has_test_predictions(run: Run) -> bool:
    """True when the run recorded its test predictions (here or in the storage): its cells can be opened."""
    if not run.is_finished or not (run.summary or {}).get("confusion_matrix"):
        return False
    if (run_working_dir(run) / PREDICTIONS).is_file():
        return True
    try:
        return default_storage.exists(run_file_name(run=run, relative=PREDICTIONS))
    except Exception:  # a storage that cannot answer: the cells stay plain numbers
        return False


def thumbnail(x) -> str:
    """A PNG data URL of one ``(C, H, W)`` image (uint8, or floats), its longer side ``THUMBNAIL`` pixels."""
    import numpy as np
    from PIL import Image

    array = np.asarray(x)
    if array.ndim == 3 and array.shape[0] in (1, 3, 4):
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    elif array.ndim == 3:
        array = array[0]  # many channels: the first
    if array.dtype != np.uint8:
        low, high = float(array.min()), float(array.max())
        if low >= 0 and high <= 1:  # generated images in [0, 1] (digits): their own contrast
            low, high = 0.0, 1.0
        array = ((array - low) / ((high - low) or 1.0) * 255).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(np.ascontiguousarray(array))
    scale = THUMBNAIL / max(image.size)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    # Small images (8x8 digits) are enlarged as blocks, not blurred; large ones are averaged down.
    image = image.resize(size, Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def run_misclassified(*, run: Run, true: int, predicted: int, limit: int = MAX_PER_CELL) -> dict:
    """The test examples of class ``true`` predicted as ``predicted`` (any cell, the diagonal too).

    Args:
        run: a finished run with a confusion matrix (the caller checked it is visible).
        true, predicted: class indices (a row and a column of the matrix).
        limit: at most this many examples (capped at ``MAX_PER_CELL``).

    Returns:
        ``{"true", "predicted", "total", "items": [{"position", "image" | "values", "name"}]}``;
        ``image`` is a PNG data URL, ``name`` the file name relative to the data's folder (if any).
    """
    import numpy as np

    from layerlab.data.prepare import held_out_examples
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.testpredictions import predictions_read

    classes = [str(c) for c in (run.summary or {}).get("classes") or []]
    if not run_has_test_predictions(run):
        raise GalleryError(
            f"run {run.id} has no per-example test predictions",
            hint="runs record them when they finish (runs trained before this version do not)",
        )
    for name, value in (("true", true), ("predicted", predicted)):
        if not 0 <= value < len(classes):
            raise GalleryError(f"{name} must be a class index from 0 to {len(classes) - 1}", where=name)
    try:
        predictions = predictions_read(run_file_local(run=run, relative=PREDICTIONS))
    except LayerlabError as exc:
        raise GalleryError(f"run {run.id}: {exc.message}") from None
    positions = predictions.cell(true, predicted)
    shown = positions[: max(0, min(limit, MAX_PER_CELL))]
    run_data_check(run)  # the data path allowed for the run's creator (a grant may have been taken back)
    cfg = experiment_from_mapping(run.config or {})
    try:
        examples = held_out_examples(
            cfg.data, seed=cfg.seed, positions=shown, cache_dir=settings.LAYERLAB_CACHE_DIR
        )
    except LayerlabError as exc:
        reason = run_error_text(run, exc.message)  # without server paths
        raise GalleryError(f"run {run.id}: its test data cannot be read again ({reason})") from None
    if examples.test_size != len(predictions.true) or not np.array_equal(examples.y, predictions.true[shown]):
        raise GalleryError(
            f"run {run.id}: its data changed since it was trained",
            hint="the test examples it was evaluated on cannot be rebuilt",
        )
    items = []
    for i, position in enumerate(examples.positions):
        item: dict = {"position": int(position)}
        if examples.kind == "image":
            item["image"] = thumbnail(examples.x[i])
        else:
            values = np.asarray(examples.x[i], dtype=float).ravel()
            item["values"] = [round(float(v), 4) for v in values[:MAX_VALUES]]
        if examples.paths is not None:
            item["name"] = examples.paths[i].replace("\\", "/").rsplit("/", 1)[-1]
        items.append(item)
    return {
        "run": run.id,
        "true": classes[true],
        "predicted": classes[predicted],
        "total": int(len(positions)),
        "items": items,
    }
