"""Read a YAML or JSON file into a mapping, with errors that name the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from layerlab.core.errors import ConfigError


class _DuplicateKey(Exception):
    def __init__(self, key, line: int | None):
        super().__init__(key)
        self.key, self.line = key, line


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (PyYAML keeps the last silently)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: PyYAML's own error follows
                break
            if duplicate:
                raise _DuplicateKey(key, key_node.start_mark.line + 1)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _unique_pairs(pairs):
    out = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key, None)
        out[key] = value
    return out


def parse_mapping_text(text: str, *, json_text: bool = False):
    """Parse YAML (or JSON) text, refusing duplicate keys: ``_DuplicateKey`` names the key and line."""
    if json_text:
        return json.loads(text, object_pairs_hook=_unique_pairs)
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)


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
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise error(
            "not a text file: expected YAML or JSON (UTF-8)",
            hint="pass the config file, not a binary",
            where=path.name,
        ) from None
    if "\x00" in text:
        raise error(
            "not a text file: expected YAML or JSON",
            hint="pass the config file, not a binary",
            where=path.name,
        )
    try:
        data = parse_mapping_text(text, json_text=path.suffix == ".json")
    except _DuplicateKey as dup:
        where = f"{path}:{dup.line}" if dup.line else str(path)
        raise error(
            f"key '{dup.key}' is given twice",
            hint="keep one of them (the last would silently win)",
            where=where,
        ) from None
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise error(f"cannot parse: {exc}".splitlines()[0], where=where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise error(f"the top level must be {what}", where=str(path))
    return data
