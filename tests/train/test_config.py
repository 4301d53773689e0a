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
        ({"train": {"epochs": 0}}, r"epochs must be in \[1, 1000000\], got 0"),
        ({"train": {"epochs": 1e9}}, "train.epochs: expected an integer, got 1000000000.0"),
        ({"train": {"lr": 0}}, r"train.lr: lr must be in \(0, 100\], got 0"),
        ({"train": {"lr": float("nan")}}, "train.lr: expected a finite number"),
        ({"train": {"lr": "inf"}}, "train.lr: expected a finite number"),
        ({"train": {"momentum": -0.5}}, r"momentum must be in \[0, 1\), got -0.5"),
        ({"train": {"weight_decay": -1e-4}}, r"weight_decay must be in \[0, 1000\]"),
        ({"train": {"label_smoothing": 1.5}}, r"label_smoothing must be in \[0, 1\]"),
        ({"train": {"hinge_margin": -1}}, r"hinge_margin must be in \(0, 1000000\]"),
        ({"train": {"l1": -0.1}}, "l1 must be in"),
        ({"train": {"l2": -0.1}}, "l2 must be in"),
        ({"train": {"grad_clip": -1}}, r"train.grad_clip: grad_clip must be in \(0,"),
        ({"train": {"grad_clip": 0}}, "grad_clip must be in"),
        ({"train": {"num_threads": 0}}, r"num_threads must be in \[1, 1024\]"),
        ({"train": {"keep_checkpoints": -1}}, "keep_checkpoints must be in"),
        ({"train": {"batch_size": 2.0}}, "batch_size: expected an integer"),
        ({"train": {"schedule": {"step_size": 0}}}, r"train.schedule.step_size: step_size must be in \[1,"),
        ({"train": {"schedule": {"kind": "plateau", "gamma": 2}}}, "gamma must be in"),
        ({"train": {"schedule": {"kind": "plateau", "gamma": 1}}}, "a plateau schedule must lower the lr"),
        ({"train": {"schedule": {"patience": -1}}}, "patience must be in"),
        (
            {"train": {"early_stopping": {"patience": -2}}},
            "train.early_stopping.patience: patience must be in",
        ),
        ({"model": {"lr_multipliers": {"fc": -1}}}, r"lr_multipliers.fc must be in \[0, 1000\]"),
        ({"seed": -1}, "seed must be in"),
        ({"seed": 2**40}, "seed must be in"),
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


def test_duplicate_yaml_keys_are_refused_naming_key_and_line(tmp_path):
    path = tmp_path / "dup.yaml"
    path.write_text("train:\n  lr: 0.1\n  epochs: 3\n  lr: 0.5\n")
    with pytest.raises(ConfigError, match=r"dup.yaml:4: key 'lr' is given twice"):
        load_experiment(path)
    path = tmp_path / "dup.json"
    path.write_text('{"seed": 1, "seed": 2}')
    with pytest.raises(ConfigError, match="key 'seed' is given twice"):
        load_experiment(path)


def test_a_binary_config_file_is_one_clear_error(tmp_path):
    path = tmp_path / "model.yaml"
    path.write_bytes(b"\x80\x03PK\x00\x01\xff\xfe garbage")
    with pytest.raises(ConfigError, match="not a text file"):
        load_experiment(path)
