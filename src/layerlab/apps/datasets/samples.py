"""A PNG grid of sample images of a dataset: one row per class, a few examples each."""

from __future__ import annotations

import io

from django.conf import settings

from layerlab.apps.datasets.access import dataset_check_readable
from layerlab.apps.datasets.models import Dataset
from layerlab.core.configtree import from_mapping
from layerlab.core.errors import DataError, LayerlabError
from layerlab.data.config import DataConfig

MAX_CLASSES = 20


def dataset_sample_grid(*, dataset: Dataset, per_class: int = 6, scale: int = 2) -> bytes:
    """PNG bytes: up to ``per_class`` images of each of the first classes (image datasets only).

    Args:
        dataset: the dataset (the caller checked that the user may see it).
        per_class: examples per row.
        scale: each image is enlarged this many times (nearest neighbour, so pixels stay visible).
    """
    import numpy as np
    from PIL import Image

    from layerlab.apps.datasets.services import dataset_error_text, unreadable_text
    from layerlab.data.prepare import load_source

    dataset_check_readable(dataset)
    try:
        data = dict(dataset.data)
        if dataset.kind == Dataset.Kind.UPLOAD:  # this machine may not have its local copy yet
            from layerlab.apps.datasets.uploads import upload_restore

            data["path"] = upload_restore(data.get("path", ""))
        cfg = from_mapping(DataConfig, data, "data")
        raw, _ = load_source(cfg, seed=0, cache_dir=settings.LAYERLAB_CACHE_DIR)
    except LayerlabError as exc:  # the engine's words, without server paths
        raise DataError(dataset_error_text(dataset, exc.one_line())) from None
    except Exception as exc:  # a broken file (dangling link ...): a clean 400, never a 500
        raise DataError(dataset_error_text(dataset, unreadable_text(exc))) from None
    if raw.kind != "image" or raw.x.ndim != 4:
        raise DataError(
            f"dataset '{dataset.name}' holds vectors, not images", hint="sample grids are for image datasets"
        )
    channels, height, width = raw.x.shape[1:]
    classes = list(range(min(len(raw.classes), MAX_CLASSES)))
    grid = np.zeros((len(classes) * (height + 2), per_class * (width + 2), 3), dtype=np.uint8)
    for row, label in enumerate(classes):
        for col, index in enumerate(np.flatnonzero(raw.y == label)[:per_class]):
            image = raw.x[index].transpose(1, 2, 0)
            if channels == 1:
                image = np.repeat(image, 3, axis=2)
            top, left = row * (height + 2) + 1, col * (width + 2) + 1
            grid[top : top + height, left : left + width] = image[..., :3]
    picture = Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()
