"""``layerlab data show``: text and JSON output, and errors as one line with exit code 3."""

from __future__ import annotations

import json

import numpy as np

from layerlab.cli.main import main


def test_show_generator_as_json(capsys):
    assert main(["data", "show", "spiral:", "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["classes"] == ["0", "1", "2"] and report["input_shape"] == [2]
    assert report["totals"] == {"train": 210, "val": 45, "test": 45}


def test_show_npz_as_text(tmp_path, capsys):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((20, 3)), y=np.arange(20) % 2)
    assert main(["data", "show", f"npz:{path}", "--cache-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    assert "input shape (3,)" in out and "classes: 2" in out and "cache: miss" in out


def test_show_config_file_uses_its_data_section(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("seed: 3\ndata:\n  source: spiral\n  classes: 4\n  points_per_class: 10\n")
    assert main(["data", "show", str(config), "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["classes"]) == 4


def test_broken_image_is_listed(tmp_path, capsys):
    from PIL import Image

    (tmp_path / "photos" / "a").mkdir(parents=True)
    Image.new("RGB", (5, 5)).save(tmp_path / "photos" / "a" / "ok.png")
    (tmp_path / "photos" / "a" / "bad.jpg").write_bytes(b"x")
    (tmp_path / "photos" / "b").mkdir()  # two classes: one class is a data error
    Image.new("RGB", (5, 5), "white").save(tmp_path / "photos" / "b" / "ok.png")
    assert (
        main(["data", "show", f"imagefolder:{tmp_path / 'photos'}", "--cache-dir", str(tmp_path / "c")]) == 0
    )
    out = capsys.readouterr().out
    assert "skipped files: 1" in out and "a/bad.jpg" in out


def test_errors_are_one_line(tmp_path, capsys):
    assert main(["data", "show", f"imagefolder:{tmp_path / 'missing'}"]) == 3
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "does not exist" in err and "\n" not in err
    assert main(["data", "show", "spirl:"]) == 3
    assert "did you mean 'spiral:'" in capsys.readouterr().err


def test_an_unknown_source_name_lists_the_sources_without_a_far_fetched_guess(capsys):
    assert main(["data", "show", "pics:/photos"]) == 3
    err = capsys.readouterr().err
    assert "unknown data source 'pics'" in err and "csv:" not in err
    from layerlab.data.config import SOURCES

    assert f"sources: {', '.join(SOURCES)}" in err and "sources: spiral, digits" in err
