"""``layerlab train --tag`` records tags; ``runs ls --tag/--filter`` selects by them; a bad tag stops first."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from layerlab.cli.main import main

SPIRAL = {
    "seed": 1,
    "data": {"source": "spiral", "points_per_class": 20},
    "model": {"preset": "mlp", "options": {"hidden": [8]}},
    "train": {"epochs": 1, "batch_size": 32, "lr": 0.01, "num_threads": 1},
}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    for name in ("LAYERLAB_RECORD", "LAYERLAB_USER", "LAYERLAB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    torch.set_num_threads(1)


def test_train_tags_are_recorded_and_listed(transactional_db, tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(SPIRAL))
    assert main(["train", str(config), "--user", "ada", "--tag", "baseline", "--tag", "cli,small"]) == 0
    assert main(["train", str(config), "--user", "ada", "--set", "train.lr=0.1"]) == 0
    capsys.readouterr()
    assert main(["runs", "--json", "ls", "--tag", "small"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["tags"] == ["baseline", "cli", "small"]
    assert main(["runs", "--json", "ls", "--filter", "config.train.lr>0.05"]) == 0
    (fast,) = json.loads(capsys.readouterr().out)
    assert fast["config"]["train"]["lr"] == 0.1 and fast["tags"] == []
    assert main(["runs", "ls"]) == 0
    assert "baseline,cli,small" in capsys.readouterr().out


def test_a_bad_tag_stops_before_training(transactional_db, tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text(yaml.safe_dump(SPIRAL))
    assert main(["train", str(config), "--user", "ada", "--tag", "two words"]) != 0
    err = capsys.readouterr().err
    assert "tag 'two words' is not allowed" in err and "Traceback" not in err
    assert not (tmp_path / "home" / "runs").exists() or not any((tmp_path / "home" / "runs").iterdir())
