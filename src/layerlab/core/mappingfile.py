"""Read a YAML or JSON file into a mapping, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from layerlab.core.errors import ConfigError


def read_mapping(
    path: str | Path, *, error: type[ConfigError] = ConfigError, what: str = "a mapping"
) -> dict:
    """The file's top-level mapping (``{}`` for an empty file).

    Args:
        path: a ``.json`` file, or YAML under any other suffix.
        error: the ConfigError subclass raised for a parse error or a non-mapping top level.
        what: how to describe the expected top level in that error, e.g. "a mapping (input, layers ...)".
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"file '{path}' does not exist", hint="check the path")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"cannot parse: {exc}".splitlines()[0], where=where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"the top level must be {what}", where=str(path))
    return data
