"""MLflow's search syntax, the subset the lab answers: ``filter`` and ``order_by`` strings parsed to plain data.

``metrics.acc > 0.9 AND params.lr = '0.01' AND tags.team = 'vision' AND attributes.status = 'FINISHED'``:
conditions joined by ``AND``; keys bare, in backquotes or in double quotes; operators ``= != < <= > >=``
(``LIKE``, ``ILIKE`` on params, tags and text attributes; ``IN`` / ``NOT IN`` on ``run_id`` and
``status``). Orders: ``metrics.acc DESC``, ``attributes.start_time``, ``params.lr ASC``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from layerlab.apps.tracking.errors import invalid

ENTITIES = {
    "metric": "metrics", "metrics": "metrics",
    "param": "params", "params": "params", "parameter": "params", "parameters": "params",
    "tag": "tags", "tags": "tags",
    "attribute": "attributes", "attributes": "attributes", "attr": "attributes", "run": "attributes",
}  # fmt: skip
ATTRIBUTES = {
    "run_id", "run_name", "status", "start_time", "end_time", "created", "user_id", "experiment_id",
}  # fmt: skip
TEXT_ATTRIBUTES = {"run_id", "run_name", "status", "user_id", "experiment_id"}
NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">="}
TEXT_OPS = {"=", "!=", "LIKE", "ILIKE"}

TOKEN = re.compile(
    r"""\s*(?:
      (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<lparen>\()
    | (?P<rparen>\))
    | (?P<comma>,)
    | '(?P<squote>(?:[^'\\]|\\.)*)'
    | "(?P<dquote>(?:[^"\\]|\\.)*)"
    | `(?P<bquote>[^`]*)`
    | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<word>[A-Za-z_][\w.\-/:]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Condition:
    entity: str  # metrics, params, tags, attributes
    key: str
    op: str
    value: Any  # float for metrics and times, str for text, a tuple of str for IN


@dataclass(frozen=True)
class Order:
    entity: str
    key: str
    ascending: bool


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, at = [], 0
    text = text.rstrip()
    while at < len(text):
        match = TOKEN.match(text, at)
        if not match or match.end() == at:
            raise invalid(f"cannot read the filter at '{text[at : at + 20].strip()}'", where="filter")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


def _identifier(tokens: list, at: int) -> tuple[str, str, int]:
    """``entity.key`` (the key bare, quoted or backquoted) or a bare attribute name."""
    kind, value = tokens[at]
    if kind != "word":
        raise invalid(f"'{value}' is not a metrics., params., tags. or attributes. name", where="filter")
    head, dot, rest = value.partition(".")
    entity = ENTITIES.get(head.lower())
    if entity is None:
        if value.lower() in ATTRIBUTES:
            return "attributes", value.lower(), at + 1
        raise invalid(
            f"'{value}' is not a name the search knows",
            hint="write metrics.<name>, params.<name>, tags.<name> or attributes.<name>",
            where="filter",
        )
    if dot and rest:
        key, at = rest, at + 1
    elif at + 1 < len(tokens) and tokens[at + 1][0] in ("bquote", "dquote") and value.endswith("."):
        key, at = tokens[at + 1][1], at + 2
    else:
        raise invalid(f"'{value}' names no key", where="filter")
    if entity == "attributes":
        key = key.lower()
        if key not in ATTRIBUTES:
            raise invalid(f"attribute '{key}' is not one of {', '.join(sorted(ATTRIBUTES))}", where="filter")
    return entity, key, at


def _value(tokens: list, at: int) -> tuple[Any, int]:
    if at >= len(tokens):
        raise invalid("a condition lacks its value", where="filter")
    kind, value = tokens[at]
    if kind == "number":
        return float(value), at + 1
    if kind in ("squote", "dquote"):
        return re.sub(r"\\(.)", r"\1", value), at + 1
    if kind == "lparen":
        items, at = [], at + 1
        while at < len(tokens) and tokens[at][0] != "rparen":
            if tokens[at][0] == "comma":
                at += 1
                continue
            item, at = _value(tokens, at)
            items.append(str(item))
        if at >= len(tokens):
            raise invalid("a list in the filter is not closed", where="filter")
        return tuple(items), at + 1
    raise invalid(f"'{value}' is not a value (quote texts: 'text')", where="filter")


def _check(condition: Condition) -> Condition:
    entity, key, op, value = condition.entity, condition.key, condition.op, condition.value
    is_time = entity == "attributes" and key in ("start_time", "end_time", "created")
    if entity == "metrics" or is_time:
        if op not in NUMBER_OPS or not isinstance(value, float):
            raise invalid(f"{entity}.{key} compares with = != < <= > >= and a number", where="filter")
    elif op in ("IN", "NOT IN"):
        if not (entity == "attributes" and key in ("run_id", "status", "experiment_id")):
            raise invalid(f"{op} works on attributes.run_id and attributes.status", where="filter")
    elif op not in TEXT_OPS or not isinstance(value, str):
        raise invalid(f"{entity}.{key} compares with = != LIKE ILIKE and a quoted text", where="filter")
    return condition


def parse_filter(text: str | None) -> list[Condition]:
    """The conditions of a filter string (empty: every run)."""
    if not text or not text.strip():
        return []
    tokens = _tokens(text)
    conditions, at = [], 0
    while at < len(tokens):
        entity, key, at = _identifier(tokens, at)
        if at >= len(tokens):
            raise invalid(f"'{key}' has no comparison", where="filter")
        kind, word = tokens[at]
        if kind == "op":
            op, at = ("!=" if word == "<>" else word), at + 1
        elif kind == "word" and word.upper() in ("LIKE", "ILIKE", "IN"):
            op, at = word.upper(), at + 1
        elif (
            kind == "word"
            and word.upper() == "NOT"
            and at + 1 < len(tokens)
            and tokens[at + 1][1].upper() == "IN"
        ):
            op, at = "NOT IN", at + 2
        else:
            raise invalid(f"'{word}' is not a comparison", where="filter")
        value, at = _value(tokens, at)
        conditions.append(_check(Condition(entity, key, op, value)))
        if at < len(tokens):
            kind, word = tokens[at]
            if kind != "word" or word.upper() != "AND":
                raise invalid(f"conditions are joined by AND, not '{word}'", where="filter")
            at += 1
            if at >= len(tokens):
                raise invalid("the filter ends with AND", where="filter")
    return conditions


def parse_order(items: list[str] | None) -> list[Order]:
    """``["metrics.acc DESC", "attributes.start_time"]`` -> orders (ascending unless DESC)."""
    orders = []
    for item in items or []:
        text = str(item).strip()
        ascending = True
        upper = text.upper()
        if upper.endswith(" DESC"):
            text, ascending = text[:-5].strip(), False
        elif upper.endswith(" ASC"):
            text = text[:-4].strip()
        tokens = _tokens(text)
        entity, key, at = _identifier(tokens, 0)
        if at != len(tokens):
            raise invalid(f"cannot order by '{item}'", where="order_by")
        orders.append(Order(entity, key, ascending))
    return orders


def like_regex(pattern: str) -> str:
    """SQL ``LIKE`` (``%`` any text, ``_`` one character) as an anchored regular expression."""
    out = []
    for char in pattern:
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
    return "^" + "".join(out) + "$"
