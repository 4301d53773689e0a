"""Tests of the experiment config: defaults, overrides and error messages."""

import pytest

from layerlab.core.errors import ConfigError
from layerlab.train.config import experiment_from_mapping, load_experiment


def test_model_preset_alone_is_a_complete_config():
    cfg = experiment_from_mapping({"model": {"preset": "mlp"}})
    assert cfg.data.source == "spiral" and cfg.model.preset == "mlp" and cfg.train.epochs >= 1


def test_empty_model_defaults_to_mlp():
    assert experiment_from_mapping({}).model.preset == "mlp"


def test_set_overrides_as_written():
    cfg = experiment_from_mapping({}, ["train.epochs=30", "data.path=/data/photos", "train.lr=1e-2"])
    assert cfg.train.epochs == 30 and cfg.data.path == "/data/photos" and cfg.train.lr == 0.01


def test_overrides_do_not_edit_the_callers_mapping():
    raw = {"train": {"epochs": 1}}
    experiment_from_mapping(raw, ["train.epochs=9"])
    assert raw == {"train": {"epochs": 1}}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"trian": {}}, "unknown key 'trian'; did you mean 'train'"),
        ({"train": {"optimizer": "adma"}}, "did you mean 'adam'"),
        ({"data": {"source": "imagefolder"}}, "needs a path"),
        ({"data": {"source": "spirals"}}, "did you mean 'spiral'"),
        ({"data": {"split": {"val": 0.6, "test": 0.5}}}, "leaves nothing to train on"),
        ({"model": {"preset": "mlp", "layers": [{"kind": "relu"}]}}, "not both"),
        ({"train": {"epochs": 0}}, "epochs must be at least 1"),
    ],
)
def test_bad_configs_are_explained(mapping, message):
    with pytest.raises(ConfigError, match=message):
        experiment_from_mapping(mapping)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_experiment(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse"):
        load_experiment(bad)
