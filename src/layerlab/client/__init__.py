"""Python client of the lab server's REST API: ``from layerlab.client import LabClient``."""

from layerlab.client.api import ClientError, LabClient

__all__ = ["ClientError", "LabClient"]
