"""research/spec.py: the experiment section checked (kinds, options, the base config) in one line each."""

from __future__ import annotations

import pytest

from layerlab.core.errors import ConfigError
from layerlab.research.spec import parse_experiment, parse_experiment_text


def test_a_seeds_experiment_parses_and_keeps_the_base_config_as_written(tiny_config):
    spec = parse_experiment(tiny_config)
    assert spec.kind_name == "seeds"
    assert spec.options.seeds == [0, 1]
    assert "experiment" not in spec.base
    assert spec.base["model"] == {"preset": "mlp", "options": {"hidden": [8]}}
    assert spec.name == "tiny-seeds"


def test_overrides_reach_the_experiment_section_and_the_base(tiny_config):
    spec = parse_experiment(tiny_config, ["experiment.seeds=[4, 5, 6]", "train.epochs=2"])
    assert spec.options.seeds == [4, 5, 6]
    assert spec.base["train"]["epochs"] == 2
    assert tiny_config["experiment"]["seeds"] == [0, 1]  # the caller's mapping is not edited


def test_the_fingerprint_follows_the_config(tiny_config):
    a = parse_experiment(tiny_config).fingerprint()
    assert a == parse_experiment(tiny_config).fingerprint()
    assert a != parse_experiment(tiny_config, ["experiment.seeds=[0]"]).fingerprint()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"kind": "sed"}, "unknown experiment kind 'sed'; did you mean 'seeds'?"),
        ({"kind": "nothing_like_it"}, "choose one of: "),
        ({"kind": None}, "needs a kind"),
        ({"seedz": [1]}, "unknown key 'seedz'; did you mean 'seeds'?"),
        ({"seeds": [-1]}, "seeds[0] must be in [0, 4294967295], got -1"),
        ({"seeds": []}, "give at least one seed"),
        ({"seeds": [1, 1]}, "a seed is given twice"),
        ({"seeds": [1.5]}, "expected an integer"),
        ({"level": 1.0}, "level must be in (0, 1)"),
        ({"level": "nan"}, "expected a finite number"),
        ({"metric": "accuracy"}, "not a reported metric"),
    ],
)
def test_bad_experiment_sections_are_one_line_errors(tiny_config, edit, message):
    tiny_config["experiment"].update(edit)
    with pytest.raises(ConfigError) as caught:
        parse_experiment(tiny_config)
    assert message in caught.value.one_line()
    assert "\n" not in caught.value.one_line()
    assert caught.value.exit_code == 2


def test_the_base_config_is_checked_like_a_run_config(tiny_config):
    tiny_config["trian"] = {}
    with pytest.raises(ConfigError, match="unknown key 'trian'; did you mean 'train'"):
        parse_experiment(tiny_config)
    del tiny_config["trian"]
    tiny_config["train"]["epochs"] = 0
    with pytest.raises(ConfigError, match="epochs must be"):
        parse_experiment(tiny_config)


def test_a_config_without_an_experiment_section_says_how_to_add_one(tiny_config):
    del tiny_config["experiment"]
    with pytest.raises(ConfigError, match="no 'experiment' section; add experiment: "):
        parse_experiment(tiny_config)
    with pytest.raises(ConfigError, match="expected a mapping"):
        parse_experiment({"experiment": "seeds"})


def test_text_configs_parse_and_duplicate_keys_are_refused():
    spec = parse_experiment_text("experiment: {kind: seeds, seeds: [3]}\n")
    assert spec.options.seeds == [3]
    with pytest.raises(ConfigError, match="given twice"):
        parse_experiment_text("seed: 1\nseed: 2\nexperiment: {kind: seeds}\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        parse_experiment_text("experiment: [kind: seeds\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        parse_experiment_text("- 1\n")


def test_the_seeds_example_parses():
    from pathlib import Path

    from layerlab.research.spec import load_experiment_spec

    path = Path(__file__).resolve().parents[2] / "examples" / "experiments" / "spiral-seeds.yaml"
    spec = load_experiment_spec(path)
    assert spec.kind_name == "seeds" and spec.options.seeds == [0, 1, 2, 3, 4]
