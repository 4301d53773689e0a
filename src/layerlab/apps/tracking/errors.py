"""The errors of the MLflow protocol: MLflow's ``error_code`` names and the HTTP status its client expects."""

from __future__ import annotations

from layerlab.core.errors import LayerlabError

STATUS = {
    "RESOURCE_DOES_NOT_EXIST": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "INVALID_PARAMETER_VALUE": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "BAD_REQUEST": 400,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "INVALID_STATE": 400,
}


class TrackingError(LayerlabError):
    """One MLflow error: ``error_code`` (``RESOURCE_DOES_NOT_EXIST`` ...) and a one-line message."""

    kind = "tracking_error"

    def __init__(self, error_code: str, message: str, **kwargs):
        self.error_code = error_code
        super().__init__(message, **kwargs)

    @property
    def status(self) -> int:
        return STATUS.get(self.error_code, 400)

    def as_mlflow(self) -> dict:
        return {"error_code": self.error_code, "message": self.one_line()}


def not_found(what: str) -> TrackingError:
    return TrackingError("RESOURCE_DOES_NOT_EXIST", f"{what} does not exist")


def invalid(message: str, **kwargs) -> TrackingError:
    return TrackingError("INVALID_PARAMETER_VALUE", message, **kwargs)
