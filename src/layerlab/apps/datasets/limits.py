"""The engine's decompression limits from the lab's settings (``LAYERLAB_MAX_IMAGE_PIXELS`` and friends)."""

from __future__ import annotations

from django.conf import settings

from layerlab.data.limits import DecodeLimits, set_default_limits


def decode_limits() -> DecodeLimits:
    """The caps the settings give: pixels per image, bytes per array."""
    return DecodeLimits(
        max_image_pixels=settings.LAYERLAB_MAX_IMAGE_PIXELS, max_array_bytes=settings.LAYERLAB_MAX_ARRAY_BYTES
    )


def decode_limits_install() -> None:
    """Make the settings' caps the engine's defaults in this process (workers decode with them)."""
    set_default_limits(decode_limits())
