"""Decompression limits: image pixels and array bytes checked from headers, before anything is decoded.

A few kilobytes of PNG or ``.npz`` can expand to gigabytes. The decoders read the size a file
declares (an image's width and height, an ``.npy`` header's shape and dtype) and refuse it above
these caps before decoding. The lab server sets the process-wide defaults from its settings
(``LAYERLAB_MAX_IMAGE_PIXELS``, ``LAYERLAB_MAX_ARRAY_MB``); every decode function also takes them
as an argument.
"""

from __future__ import annotations

import dataclasses
import math
from typing import IO

import numpy as np

from layerlab.core.errors import DataError

MEGABYTE = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class DecodeLimits:
    """Caps on what one file may decode to.

    Args:
        max_image_pixels: width x height of one image.
        max_array_bytes: bytes of one array of an ``.npz`` / ``.npy`` file, once loaded.
    """

    max_image_pixels: int = 50_000_000
    max_array_bytes: int = 1024 * MEGABYTE


_defaults = DecodeLimits()


def default_limits() -> DecodeLimits:
    """The limits used when a caller passes none (set once by the lab server's settings)."""
    return _defaults


def set_default_limits(limits: DecodeLimits) -> None:
    """Replace the process-wide default limits (the server calls this when it starts).

    Pillow's own bomb guard (``Image.MAX_IMAGE_PIXELS``: it refuses twice that at open) follows, so a
    cap raised above Pillow's default is honoured and a lowered one is enforced by Pillow too.
    """
    from PIL import Image

    global _defaults
    _defaults = limits
    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels


def image_pixels_check(width: int, height: int, name: str, limits: DecodeLimits | None = None) -> None:
    """Refuse an image whose header declares more than ``max_image_pixels`` (checked before decoding).

    Args:
        width, height: from the image's header (``PIL.Image.open`` without ``load``).
        name: the file as the user knows it (never a server path).
    """
    cap = (limits or _defaults).max_image_pixels
    if width * height > cap:
        raise DataError(
            f"'{name}' is {width}x{height} = {width * height:,} pixels, above the limit of {cap:,}",
            hint="send a smaller image, or raise LAYERLAB_MAX_IMAGE_PIXELS on the lab server",
        )


def npy_header(handle: IO[bytes]) -> tuple[tuple[int, ...], np.dtype]:
    """``(shape, dtype)`` from the header of an ``.npy`` stream, reading nothing past it."""
    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(n) for n in shape), dtype


def array_bytes_check(handle: IO[bytes], name: str, limits: DecodeLimits | None = None) -> tuple[int, ...]:
    """Refuse an ``.npy`` stream whose header declares more than ``max_array_bytes``; returns its shape.

    Args:
        handle: an open ``.npy`` file or ``.npz`` member, at its start.
        name: the array as the user knows it (``X``, ``upload.npz:y``; never a server path).
    """
    cap = (limits or _defaults).max_array_bytes
    shape, dtype = npy_header(handle)
    size = math.prod(shape) * dtype.itemsize
    if size > cap:
        raise DataError(
            f"array '{name}' of shape {list(shape)} ({dtype}) is {size:,} bytes, above the limit of {cap:,}",
            hint="send less data, or raise LAYERLAB_MAX_ARRAY_MB on the lab server",
        )
    return shape
