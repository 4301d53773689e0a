"""Tests of typed config trees: unknown keys, coercion, overrides."""

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

import pytest

from layerlab.core.configtree import apply_override, from_mapping, limits_schema, setting, to_mapping
from layerlab.core.errors import ConfigError


@dataclass
class Inner:
    rate: float = 0.1
    kind: Literal["a", "b"] = "a"


@dataclass
class Outer:
    epochs: int = 3
    sizes: list[int] = field(default_factory=list)
    flag: bool = False
    inner: Inner = field(default_factory=Inner)
    maybe: int | None = None


def test_defaults_and_nested_values():
    cfg = from_mapping(Outer, {"epochs": "5", "inner": {"rate": 1}, "sizes": [1, "2"], "flag": "yes"})
    assert cfg.epochs == 5 and cfg.inner.rate == 1.0 and cfg.sizes == [1, 2] and cfg.flag is True
    assert to_mapping(cfg)["inner"] == {"rate": 1.0, "kind": "a"}


def test_unknown_key_suggests_the_closest_name():
    with pytest.raises(ConfigError, match=r"inner: unknown key 'rte'; did you mean 'rate'\?"):
        from_mapping(Outer, {"inner": {"rte": 1}})


def test_wrong_type_names_the_path():
    with pytest.raises(ConfigError, match=r"sizes\[1\]: expected an integer, got 'x'"):
        from_mapping(Outer, {"sizes": [1, "x"]})


def test_literal_suggests_allowed_value():
    with pytest.raises(ConfigError, match="did you mean 'b'"):
        from_mapping(Outer, {"inner": {"kind": "bb"}})


def test_optional_accepts_none_and_value():
    assert from_mapping(Outer, {"maybe": None}).maybe is None
    assert from_mapping(Outer, {"maybe": "4"}).maybe == 4


def test_override_creates_sections_and_parses_values():
    tree = {"train": {"epochs": 1}}
    apply_override(tree, "train.epochs=30", int)
    apply_override(tree, "data.path=/x", str)
    assert tree == {"train": {"epochs": 30}, "data": {"path": "/x"}}


def test_override_without_equals_is_explained():
    with pytest.raises(ConfigError, match="is not an assignment"):
        apply_override({}, "train.epochs", str)


def test_override_into_a_value_is_refused():
    with pytest.raises(ConfigError, match="is a value, not a section"):
        apply_override({"seed": 1}, "seed.x=2", str)


def test_flatten_gives_dotted_keys_and_drops_empty_sections():
    from layerlab.core.configtree import flatten

    assert flatten({"train": {"lr": 0.1, "schedule": {}}, "sizes": [1, 2]}) == {
        "train.lr": 0.1,
        "sizes": [1, 2],
    }


@dataclass
class Limited:
    rate: float = setting(0.1, minimum=0.0, below=1.0)
    count: int = setting(1, minimum=1, maximum=100)
    margin: float = setting(1.0, above=0.0)
    sizes: list[int] = setting(default_factory=list, minimum=1)
    factors: dict[str, float] = setting(default_factory=dict, minimum=0.0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"rate": -0.5}, r"rate: rate must be in \[0, 1\), got -0.5"),
        ({"rate": 1.0}, r"rate must be in \[0, 1\)"),
        ({"count": 0}, r"count must be in \[1, 100\], got 0"),
        ({"count": 101}, r"count must be in \[1, 100\]"),
        ({"margin": 0}, r"margin must be above 0, got 0"),
        ({"sizes": [3, 0]}, r"sizes\[1\] must be at least 1, got 0"),
        ({"factors": {"a": -1}}, r"factors.a must be at least 0, got -1"),
    ],
)
def test_limits_declared_on_the_field_are_checked(data, message):
    with pytest.raises(ConfigError, match=message):
        from_mapping(Limited, data)
    assert from_mapping(Limited, {"rate": 0.0, "count": 100, "sizes": [1]}).count == 100


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "-inf", "nan", 10**400])
def test_non_finite_floats_are_refused(value):
    with pytest.raises(ConfigError, match="expected a finite number"):
        from_mapping(Inner, {"rate": value})


@pytest.mark.parametrize("value", [1e9, 2.0, 2.5, "1e9", 2**70])
def test_floats_and_huge_values_are_refused_for_ints(value):
    with pytest.raises(ConfigError, match="epochs: (expected an integer|.* is too large)"):
        from_mapping(Outer, {"epochs": value})


def test_limits_schema_uses_json_schema_keywords():
    meta = {f.name: f.metadata for f in dataclasses.fields(Limited)}
    assert limits_schema(meta["rate"]) == {"minimum": 0.0, "exclusiveMaximum": 1.0}
    assert limits_schema(meta["margin"]) == {"exclusiveMinimum": 0.0}
