"""``layerlab arch``: the table, JSON, presets, schema, and one-line errors with exit code 2."""

from __future__ import annotations

import json

import pytest
import yaml

from layerlab.cli.main import main

SPEC = {
    "input": [1, 64, 64],
    "classes": 10,
    "layers": [
        {"kind": "conv2d", "out": 6, "kernel": 5, "stride": 1, "padding": 0, "name": "conv1", "init": "he"},
        {"kind": "relu"},
        {"kind": "maxpool2d", "kernel": 2},
        {"kind": "flatten"},
        {"kind": "linear", "out": "classes"},
    ],
}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "net.yaml"
    path.write_text(yaml.safe_dump(SPEC))
    return path


def test_show_prints_the_table(spec_file, capsys):
    assert main(["arch", "show", str(spec_file)]) == 0
    out = capsys.readouterr().out
    assert "conv1" in out and "6x60x60" in out and "54,010" in out
    assert "total: 54,166 parameters" in out
    assert "padding=2 ((F-1)/2) keeps 64x64" in out
    assert "linear_1 holds" in out


def test_show_json(spec_file, capsys):
    assert main(["arch", "show", str(spec_file), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 54166
    assert data["output_shape"] == [10]
    assert [row["name"] for row in data["rows"]] == [
        "conv1",
        "relu_1",
        "maxpool2d_1",
        "flatten_1",
        "linear_1",
    ]


def test_input_and_classes_options_replace_the_file_values(spec_file, capsys):
    assert main(["arch", "show", str(spec_file), "--json", "--input", "1,32,32", "--classes", "3"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [1, 32, 32] and data["output_shape"] == [3]


def test_bad_spec_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text(
        yaml.safe_dump({"input": [1, 5, 5], "layers": [{"kind": "conv2d", "out": 2, "kernel": 7}]})
    )
    assert main(["arch", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("error: conv2d #0 (conv2d_1): input 1x5x5, kernel 7: (5 - 7 + 2*0)/1 + 1 = -1 < 1")
    path.write_text(yaml.safe_dump({"layers": [{"kind": "lineer", "out": 2}]}))
    assert main(["arch", "show", str(path), "--input", "4"]) == 2
    assert "did you mean 'linear'" in capsys.readouterr().err


def test_missing_file_and_missing_target(tmp_path, capsys):
    assert main(["arch", "show", str(tmp_path / "none.yaml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["arch", "show"]) == 2


def test_preset_by_name_with_options(capsys):
    assert (
        main(["arch", "show", "mlp", "--input", "2", "--classes", "3", "--option", "hidden=[8]", "--json"])
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert data["total_params"] == 2 * 8 + 8 + 8 * 3 + 3
    assert main(["arch", "show", "lenet5", "--classes", "3"]) == 2
    assert "--input" in capsys.readouterr().err


def test_spec_prints_an_editable_spec(capsys):
    assert main(["arch", "spec", "signnet", "--input", "1,64,64", "--classes", "10"]) == 0
    mapping = yaml.safe_load(capsys.readouterr().out)
    assert mapping["input"] == [1, 64, 64] and mapping["layers"][0]["name"] == "conv1"


def test_experiment_config_uses_the_data_signature(tmp_path, capsys):
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump({"data": {"source": "digits"}, "model": {"preset": "lenet5"}}))
    assert main(["arch", "show", str(path), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input_shape"] == [1, 8, 8] and data["output_shape"] == [10]
    assert main(["arch", "show", str(path), "--json", "--set", "model.options.channels=[4,8]"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows[0]["output_shape"] == [4, 8, 8]


def test_presets_and_schema(capsys):
    assert main(["arch", "presets"]) == 0
    out = capsys.readouterr().out
    assert "signnet" in out and "coordconv-classifier" in out
    assert main(["arch", "schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "coordconv2d" in schema["$defs"]


def test_output_piped_into_a_reader_that_stops_early_ends_quietly():
    import subprocess
    import sys

    code = "import sys; from layerlab.cli.main import main; sys.exit(main(['arch', 'schema']))"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child writes (it is still importing): as `| head -0` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and "Traceback" not in err, err


def test_unknown_bare_name_lists_the_presets_with_the_closest(capsys):
    assert main(["arch", "show", "lenet"]) == 2
    err = capsys.readouterr().err
    assert "'lenet' is neither a preset nor a file" in err and "did you mean 'lenet5'?" in err
    assert "presets: mlp, " in err and "does not exist" not in err


def test_experiment_config_shapes_come_from_the_headers_not_the_data(tmp_path, capsys, monkeypatch):
    import numpy as np

    import layerlab.data.prepare as prepare

    def refuse(*args, **kwargs):
        raise AssertionError("the data was imported")

    monkeypatch.setattr(prepare, "load_raw", refuse)
    np.savez(tmp_path / "d.npz", X=np.zeros((6, 1, 8, 8), dtype=np.float32), y=np.arange(6) % 3)
    path = tmp_path / "exp.yaml"
    data = {"source": "npz", "path": str(tmp_path / "d.npz")}
    path.write_text(yaml.safe_dump({"data": data, "model": {"preset": "lenet5"}}))
    assert main(["arch", "show", str(path), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["input_shape"] == [1, 8, 8] and summary["output_shape"] == [3]
