"""Run filters on any summary metric or config value, done in the database.

An expression is conditions joined by ``and``::

    metric.test_accuracy>=0.9 and config.train.lr<0.01 and config.data.source=spiral

``metric.<key>`` (or ``summary.<key>``) reads the run's summary, ``config.<dotted key>`` its
resolved config. Numbers compare as numbers (a value that is not a number never matches
``<``/``>``), anything else compares for equality (``=``, ``!=``) as JSON: ``true``, ``false``,
``null``, or a string (quotes optional). The same conditions may come as query parameters
(``?metric.test_accuracy>=0.9``), which is how ``query_conditions`` reads a request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db.models import Case, F, FloatField, Q, QuerySet, Value, When
from django.db.models.fields.json import HasKey, KeyTextTransform, KeyTransform
from django.db.models.functions import Cast

from layerlab.core.errors import ConfigError

MAX_CONDITIONS = 10
MAX_EXPRESSION = 1000
FIELDS = {"metric": "summary", "summary": "summary", "config": "config"}
OPERATORS = (">=", "<=", "!=", "==", "=", ">", "<")  # longest first: ">=" before ">"
KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+){0,7}$")
CONDITION_RE = re.compile(
    r"^\s*(?P<field>[A-Za-z]+)\.(?P<key>[^\s<>=!]+)\s*(?P<op>>=|<=|!=|==|=|>|<)\s*(?P<value>.*?)\s*$"
)
AND_RE = re.compile(r"\s+and\s+|\s*&&\s*", re.IGNORECASE)
# What a number looks like in the database's text of a JSON value (checked before casting:
# PostgreSQL refuses to cast 'abc' to a float, and a summary may hold strings).
NUMBER_RE = r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
SYNTAX = "write field.key OP value, e.g. metric.test_accuracy>=0.9 and config.train.lr<0.01"


@dataclass(frozen=True)
class Condition:
    """``field.key op value``: field is ``summary`` or ``config``; value a number, bool, None or str."""

    field: str
    key: str
    op: str
    value: Any


def parse_value(text: str) -> Any:
    """A condition's value: a number, ``true``/``false``/``null``, or a string (quotes optional)."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none"):
        return None
    try:
        number = float(text)
    except ValueError:
        return text
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(f"'{text}' is not a finite number", where="filter")
    return number


def parse_condition(text: str) -> Condition:
    """One ``field.key op value``; ``ConfigError`` saying what is wrong with it."""
    match = CONDITION_RE.match(text)
    if not match:
        raise ConfigError(f"cannot read '{text}'", hint=SYNTAX, where="filter")
    field, key, op, raw = match["field"].lower(), match["key"], match["op"], match["value"]
    if field not in FIELDS:
        raise ConfigError(
            f"'{match['field']}' is not a field",
            hint="filter on metric.<name> or config.<dotted key>",
            where="filter",
        )
    if not KEY_RE.match(key):
        raise ConfigError(
            f"'{key}' is not a key",
            hint="keys are letters, digits, _ and -, dotted (at most 8 deep)",
            where="filter",
        )
    if raw == "":
        raise ConfigError(f"'{text.strip()}' has no value", hint=SYNTAX, where="filter")
    value = parse_value(raw)
    op = "=" if op == "==" else op
    if op not in ("=", "!=") and not isinstance(value, float):
        raise ConfigError(
            f"'{text.strip()}' compares with '{raw}', which is not a number",
            hint="<, <=, >, >= need a number; use = or != for text",
            where="filter",
        )
    return Condition(FIELDS[field], key, op, value)


def parse_expression(expression: str) -> list[Condition]:
    """Conditions joined by ``and`` (or ``&&``); a blank expression is no condition."""
    text = (expression or "").strip()
    if not text:
        return []
    if len(text) > MAX_EXPRESSION:
        raise ConfigError(f"the filter is longer than {MAX_EXPRESSION} characters", where="filter")
    if re.search(r"\s+or\s+|\|\|", text, re.IGNORECASE):
        raise ConfigError("'or' is not supported", hint="conditions are joined by 'and'", where="filter")
    conditions = [parse_condition(part) for part in AND_RE.split(text) if part.strip()]
    if len(conditions) > MAX_CONDITIONS:
        raise ConfigError(f"{len(conditions)} conditions", hint=f"at most {MAX_CONDITIONS}", where="filter")
    return conditions


def query_conditions(params) -> list[Condition]:
    """The conditions of a request's query: ``filter=<expression>`` plus ``metric.x>=1``-style parameters.

    A browser sends ``?metric.test_accuracy>=0.9`` as the pair (``metric.test_accuracy>``, ``0.9``)
    and ``?metric.loss<0.5`` as (``metric.loss<0.5``, ``""``): the pair is joined back.

    Args:
        params: the request's GET mapping (a QueryDict: repeated keys are all read).
    """
    conditions: list[Condition] = []
    for expression in params.getlist("filter") if hasattr(params, "getlist") else [params.get("filter", "")]:
        conditions += parse_expression(expression)
    for key in params:
        prefix = key.split(".", 1)[0].lower()
        if prefix not in FIELDS or "." not in key:
            continue
        values = params.getlist(key) if hasattr(params, "getlist") else [params[key]]
        for value in values:
            text = key if value == "" and re.search(r"[<>=]", key) else f"{key}={value}"
            conditions.append(parse_condition(text))
    if len(conditions) > MAX_CONDITIONS:
        raise ConfigError(f"{len(conditions)} conditions", hint=f"at most {MAX_CONDITIONS}", where="filter")
    return conditions


def _key(condition: Condition, *, text: bool = False):
    """The JSON value at the condition's key (as text with ``text``), built transform by transform.

    Not ``summary__a__b`` lookups: a key named like a lookup (``contains``, ``exact``) would be read
    as one; transforms take every part as a key.
    """
    *parents, last = condition.key.split(".")
    expression = F(condition.field)
    for key in parents:
        expression = KeyTransform(key, expression)
    return (KeyTextTransform if text else KeyTransform)(last, expression), expression, last


def run_filter(runs: QuerySet, conditions: list[Condition]) -> QuerySet:
    """The runs matching every condition: SQL on the JSON columns (SQLite and PostgreSQL alike)."""
    for index, condition in enumerate(conditions):
        alias = f"_filter_{index}"
        if isinstance(condition.value, float):
            # The value as a number where it is one, else NULL (which matches no comparison).
            text, _, _ = _key(condition, text=True)
            number = Case(
                When(Q(**{f"{alias}_text__regex": NUMBER_RE}), then=Cast(F(f"{alias}_text"), FloatField())),
                default=Value(None),
                output_field=FloatField(),
            )
            runs = runs.alias(**{f"{alias}_text": text}).alias(**{alias: number})
            lookup = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt", "=": "exact", "!=": "exact"}[
                condition.op
            ]
            match = Q(**{f"{alias}__{lookup}": condition.value})
            if condition.op == "!=":
                runs = runs.filter(**{f"{alias}__isnull": False}).exclude(match)
            else:
                runs = runs.filter(match)
            continue
        value, parent, last = _key(condition)
        present = HasKey(parent, last)
        runs = runs.alias(**{alias: value})
        match = Q(present) & Q(**{alias: condition.value})  # JSON equality: null, true/false, or a string
        runs = runs.filter(match) if condition.op == "=" else runs.filter(present).exclude(match)
    return runs
