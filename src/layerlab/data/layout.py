"""How the axes of an array source are read (``data.layout``): vectors, images or sequences.

``auto`` keeps what a 2-D or 4-D array says: ``(N, F)`` vectors, ``(N, H, W, C)`` / ``(N, C, H, W)``
images with C 1 or 3, and reads a 3-D ``(N, H, W)`` array as grayscale images. ``sequence`` reads
``(N, T, F)`` as T time steps of F features (what lstm and gru take), and a flat ``(N, T*F)`` row
(a CSV file) as ``steps`` time steps (default: one feature per step). ``image`` insists on images;
``flat`` makes every example a vector ``(N, prod)``. ``layout_of`` works on shapes alone, so the
input shape is known from an array's header before its data is read.
"""

from __future__ import annotations

import math

import numpy as np

from layerlab.core.errors import DataError

IMAGE_SHAPES = "(N, H, W), (N, H, W, C) or (N, C, H, W) with C 1 or 3"


def _image(shape: tuple[int, ...]) -> tuple[tuple[int, ...], str] | None:
    """``((C, H, W), how)`` for an image array shape ``(N, ...)``, or None."""
    if len(shape) == 3:
        return (1, shape[1], shape[2]), "channel"
    if len(shape) == 4:
        if shape[-1] in (1, 3) and shape[1] not in (1, 3):
            return (shape[3], shape[1], shape[2]), "nhwc"
        if shape[1] in (1, 3):
            return tuple(shape[1:]), "keep"
    return None


def layout_of(
    shape: tuple[int, ...], layout: str, steps: int | None, where: str
) -> tuple[str, tuple[int, ...], str]:
    """``(kind, shape of one example, how)`` for an array of ``shape`` (N first) read as ``layout``.

    ``how`` is the operation ``arrange`` applies: keep, channel (add a channel axis), nhwc
    (move channels first) or reshape.
    """
    rest = tuple(int(d) for d in shape[1:])
    if layout == "flat":
        return "vector", (math.prod(rest),), "reshape" if len(rest) != 1 else "keep"
    if layout == "sequence":
        if len(rest) == 2:
            return "sequence", rest, "keep"
        if len(rest) == 1:
            t = steps or rest[0]
            if rest[0] % t:
                raise DataError(
                    f"rows of {rest[0]} values do not split into {t} time steps",
                    hint="set data.steps to a divisor of the number of feature columns",
                    where=where,
                )
            return "sequence", (t, rest[0] // t), "reshape"
        raise DataError(
            f"inputs have shape {tuple(shape)}; layout sequence takes (N, T, F) or flat rows (N, T*F)",
            where=where,
        )
    if len(rest) == 1 and layout == "auto":
        return "vector", rest, "keep"
    image = _image(tuple(shape))
    if image is not None:
        return "image", image[0], image[1]
    expected = IMAGE_SHAPES if layout == "image" else f"(N, F), {IMAGE_SHAPES}"
    hint = (
        "set data.layout: sequence for (N, T, F) time series, or flat for any shape"
        if layout == "auto"
        else None
    )
    raise DataError(f"inputs have shape {tuple(shape)}; expected {expected}", hint=hint, where=where)


def arrange(x: np.ndarray, layout: str, steps: int | None, where: str) -> tuple[np.ndarray, str]:
    """``x`` with its axes as ``layout`` reads them, and the kind (vector, image or sequence)."""
    kind, shape, how = layout_of(tuple(x.shape), layout, steps, where)
    if how == "channel":
        x = x[:, None, :, :]
    elif how == "nhwc":
        x = x.transpose(0, 3, 1, 2)
    elif how == "reshape":
        x = np.asarray(x).reshape(len(x), *shape)
    return x, kind
