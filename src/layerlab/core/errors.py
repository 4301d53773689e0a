"""One exception tree whose messages are meant for the user, not for a traceback.

Every interface (CLI, API, jobs) renders a ``LayerlabError`` the same way: one line
saying what is wrong and where, and a hint saying how to fix it.
"""

from __future__ import annotations


class LayerlabError(Exception):
    """Base of every error a user may see. ``exit_code`` is what the CLI returns."""

    exit_code = 1
    kind = "error"

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None):
        self.message = message
        self.hint = hint
        self.where = where
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as one line: ``where: message (hint)``."""
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text = f"{text}; {self.hint}"
        return text

    def as_dict(self) -> dict:
        """The JSON form the API answers with: ``{"error": ..., "detail": ...}``."""
        return {"error": self.kind, "detail": self.one_line()}


class ConfigError(LayerlabError):
    """A configuration key or value is wrong (unknown key, wrong type, bad value)."""

    exit_code = 2
    kind = "config_error"


class SpecError(ConfigError):
    """A network spec is malformed: unknown layer kind or option."""

    kind = "spec_error"


class ShapeError(SpecError):
    """A network spec is well-formed but its shapes do not fit together."""

    kind = "shape_error"


class DataError(LayerlabError):
    """Data cannot be found, read or used (missing path, no classes, labels out of range)."""

    exit_code = 3
    kind = "data_error"


class CheckpointError(LayerlabError):
    """A checkpoint is missing or corrupt."""

    exit_code = 4
    kind = "checkpoint_error"


class DivergedError(LayerlabError):
    """Training produced a NaN or infinite loss."""

    exit_code = 5
    kind = "diverged"


class ExportError(LayerlabError):
    """An exported model is missing, unsupported or does not match the eager model."""

    exit_code = 6
    kind = "export_error"
