"""Request inputs readied for an engine: JSON arrays and image bytes, with the run's own preprocessing.

Images are decoded from memory as ``data.decode`` decodes files (header pixel cap checked before
decoding, EXIF orientation, the run's size and channels), then normalized by ``Preprocessing.apply``.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageOps

from layerlab.core.errors import DataError
from layerlab.data.limits import DecodeLimits, default_limits
from layerlab.data.preprocess import Preprocessing


class TooLargeError(DataError):
    """An input above a size limit (answered 413 by the serving app)."""

    kind = "too_large"


def image_from_bytes(
    data: bytes, name: str, pre: Preprocessing, limits: DecodeLimits | None = None
) -> np.ndarray:
    """One image's bytes -> ``(channels, height, width)`` uint8 with the run's size and channels.

    Args:
        name: how errors name the image (the upload's name, never a server path).
    """
    if pre.kind != "image":
        raise DataError("this model takes arrays, not images", hint='send JSON {"inputs": [...]}')
    cap = (limits or default_limits()).max_image_pixels
    height, width = int(pre.size[0]), int(pre.size[1])
    channels = int(pre.channels or 1)
    mode = "L" if channels == 1 else "RGB"
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > cap:
                raise TooLargeError(
                    f"'{name}' is {image.width}x{image.height} = {image.width * image.height:,} pixels, "
                    f"above the limit of {cap:,}",
                    hint="send a smaller image",
                )
            image.draft(mode, (width, height))
            image = ImageOps.exif_transpose(image)
            image = image.convert(mode).resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.uint8)
    except DataError:
        raise
    except Image.DecompressionBombError:
        raise TooLargeError(f"'{name}' declares too many pixels", hint="send a smaller image") from None
    except Exception:
        raise DataError(
            f"'{name}' is not an image that can be decoded", hint="send PNG, JPEG or another image"
        ) from None
    return array[None, :, :] if channels == 1 else np.ascontiguousarray(array.transpose(2, 0, 1))


def images_batch(
    images: list[tuple[str, bytes]], pre: Preprocessing, limits: DecodeLimits | None = None
) -> np.ndarray:
    """``[(name, bytes)]`` -> the normalized float32 batch."""
    decoded = np.stack([image_from_bytes(data, name, pre, limits) for name, data in images])
    return pre.apply(decoded).numpy()


def arrays_batch(inputs, pre: Preprocessing) -> np.ndarray:
    """A JSON list of raw examples (or one example) -> the normalized float32 batch."""
    try:
        array = np.asarray(inputs, dtype=np.float32)
    except (ValueError, TypeError):
        raise DataError(
            "inputs must be a list of examples, each a (nested) list of numbers of one shape", where="inputs"
        ) from None
    shape = tuple(pre.input_shape)
    if tuple(array.shape) == shape:
        array = array[None]  # one example without the batch axis
    if array.ndim < 1 or tuple(array.shape[1:]) != shape or len(array) == 0:
        raise DataError(
            f"inputs of shape {list(array.shape)} do not fit this model, which takes examples of shape {list(shape)}",
            where="inputs",
        )
    if not np.isfinite(array).all():
        raise DataError("inputs hold NaN or infinite values", where="inputs")
    return pre.apply(array).numpy()
