"""layerlab train / evaluate / predict / export through the CLI entry point, on real (tiny) data."""

import json

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from layerlab.cli.main import main

SPIRAL = {
    "seed": 1,
    "data": {"source": "spiral", "points_per_class": 60},
    "model": {"preset": "mlp", "options": {"hidden": [32]}},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.01, "num_threads": 1},
}


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path / "home"))
    # The engine's CLI behaviour; recording in the store is tested in test_train_store.py.
    monkeypatch.setenv("LAYERLAB_RECORD", "0")
    torch.set_num_threads(1)


def write(tmp_path, data, name="exp.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def one_error_line(capsys, code, expected_code, pattern):
    err = capsys.readouterr().err.strip().splitlines()
    assert code == expected_code, err
    assert len(err) == 1 and err[0].startswith("error: ") and pattern in err[0], err
    return err[0]


def test_train_json_last_line_and_default_run_dir(tmp_path, capsys):
    code = main(["train", write(tmp_path, SPIRAL), "--set", "train.epochs=2", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    for key in (
        "run_dir",
        "epochs",
        "train_accuracy",
        "val_accuracy",
        "test_accuracy",
        "test_loss",
        "seconds",
    ):
        assert key in summary
    assert summary["epochs"] == 2 and len(summary["weights_sha256"]) == 64
    assert "/home/runs/exp-" in summary["run_dir"]
    assert "epoch 2/2" in err  # progress goes to stderr with --json


def test_train_plain_output_and_resume_of_a_finished_run(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", write(tmp_path, SPIRAL), "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "epoch 3/3" in out and "verdict" in out and "confusion" in out
    assert main(["train", "--resume", str(run_dir), "--set", "train.epochs=4", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["epochs"] == 4


def test_unknown_config_key_suggests_the_closest(tmp_path, capsys):
    code = main(["train", write(tmp_path, SPIRAL), "--set", "train.epocs=3"])
    one_error_line(capsys, code, 2, "did you mean 'epochs'?")


def test_unknown_layer_kind(tmp_path, capsys):
    cfg = {**SPIRAL, "model": {"layers": [{"kind": "lineer", "out": 4}]}}
    code = main(["train", write(tmp_path, cfg)])
    one_error_line(capsys, code, 2, "lineer")


def test_impossible_shapes(tmp_path, capsys):
    cfg = {
        **SPIRAL,
        "data": {"source": "digits"},
        "model": {"layers": [{"kind": "conv2d", "out": 4, "kernel": 12}]},
    }
    code = main(["train", write(tmp_path, cfg)])
    one_error_line(capsys, code, 2, "conv2d")


def test_missing_data_path(tmp_path, capsys):
    cfg = {**SPIRAL, "data": {"source": "imagefolder", "path": str(tmp_path / "nope")}}
    code = main(["train", write(tmp_path, cfg)])
    one_error_line(capsys, code, 3, "nope")


def test_resume_of_an_empty_or_missing_directory_exits_4(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code = main(["train", "--resume", str(tmp_path / "empty")])
    one_error_line(capsys, code, 4, "not a layerlab run directory")
    code = main(["train", "--resume", str(tmp_path / "nowhere")])
    one_error_line(capsys, code, 4, "does not exist")


def test_a_run_killed_before_its_first_checkpoint_resumes_from_epoch_1(tmp_path, capsys):
    run = tmp_path / "killed"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(SPIRAL))
    (run / "metrics.jsonl").write_text('{"epoch": 1, "train_loss": 1.0}\n')
    (run / "checkpoints" / ".last.ckpt.abc123.tmp").write_bytes(b"half a checkpoint")
    code = main(["train", write(tmp_path, SPIRAL), "--run-dir", str(run)])
    assert "--resume" in one_error_line(capsys, code, 2, "already holds a run")
    code = main(["train", "--resume", str(run), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "starting the run over from epoch 1" in err
    assert json.loads(out.strip().splitlines()[-1])["epochs"] == 3
    assert not list(run.rglob("*.tmp"))
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [
        1,
        2,
        3,
    ]


def test_resume_refuses_model_and_data_overrides(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", write(tmp_path, SPIRAL), "--run-dir", str(run)]) == 0
    capsys.readouterr()
    for key in ("model.options.hidden=[64]", "data.source=digits", "train.lr=0.5"):
        code = main(["train", "--resume", str(run), "--set", key])
        one_error_line(capsys, code, 2, f"--set {key.split('=')[0]} cannot change when a run resumes")
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["options"]["hidden"] == [32]
    assert main(["train", "--resume", str(run), "--set", "train.epochs=4"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["epochs"] == 4  # what ran is recorded


def test_no_config_and_no_resume(capsys):
    one_error_line(capsys, main(["train"]), 2, "--resume DIR")


def test_divergence_is_one_line_with_a_hint(tmp_path, capsys):
    code = main(["train", write(tmp_path, SPIRAL), "--set", "train.optimizer=sgd", "--set", "train.lr=100"])
    line = one_error_line(capsys, code, 5, "diverged at epoch")
    assert "--set train.lr=0.0001" in line


def test_corrupt_checkpoint_is_named(tmp_path, capsys):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x00" * 10)
    code = main(["evaluate", str(bad), "--data", "spiral:"])
    one_error_line(capsys, code, 4, "bad.ckpt' is corrupt")


def image_folder(root, n=12, size=10):
    """Two classes a 2-layer net separates at once: dark and bright squares."""
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 210)):
        (root / name).mkdir(parents=True)
        for i in range(n):
            pixels = np.clip(level + rng.normal(0, 20, (size, size)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels, mode="L").save(root / name / f"{i:02d}.png")
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("images")
    folder = image_folder(tmp / "photos")
    cfg = {
        "data": {"source": "imagefolder", "path": str(folder), "size": [8, 8], "channels": 1},
        "model": {"preset": "mlp", "options": {"hidden": [16]}},
        "train": {"epochs": 4, "batch_size": 8, "lr": 0.01},
    }
    path = tmp / "img.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert main(["train", str(path), "--run-dir", str(tmp / "run"), "--json"]) == 0
    return tmp / "run", folder


def test_evaluate_predict_export_on_an_image_run(image_run, tmp_path, capsys):
    run_dir, folder = image_run
    capsys.readouterr()
    assert main(["evaluate", str(run_dir), "--data", f"imagefolder:{folder}", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 24 and result["accuracy"] > 0.9 and len(result["confusion_matrix"]) == 2

    photo = folder / "bright" / "00.png"
    assert main(["predict", str(run_dir), "--input", str(photo), "--top-k", "2", "--json"]) == 0
    [prediction] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert prediction["top"][0]["class"] == "bright" and len(prediction["top"]) == 2

    for fmt in ("safetensors", "torchscript", "onnx"):
        out = tmp_path / f"model.{fmt}"
        assert main(["export", str(run_dir), "--format", fmt, "--out", str(out)]) == 0
        assert out.stat().st_size > 0
    assert "outputs match" in capsys.readouterr().out


def test_predict_missing_input_file(image_run, capsys):
    run_dir, _ = image_run
    capsys.readouterr()
    code = main(["predict", str(run_dir), "--input", "/no/such.png"])
    one_error_line(capsys, code, 3, "/no/such.png")


def test_evaluate_on_data_with_other_classes(image_run, tmp_path, capsys):
    run_dir, _ = image_run
    other = tmp_path / "other"
    (other / "cats").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8), mode="L").save(other / "cats" / "a.png")
    capsys.readouterr()
    code = main(["evaluate", str(run_dir), "--data", f"imagefolder:{other}"])
    one_error_line(capsys, code, 3, "cats")


def test_unreadable_images_are_skipped_counted_and_said_while_the_run_continues(tmp_path, capsys):
    folder = image_folder(tmp_path / "photos", n=6)
    (folder / "dark" / "broken.png").write_bytes(b"not a png")
    cfg = {
        "data": {"source": "imagefolder", "path": str(folder), "size": [8, 8], "channels": 1},
        "model": {"preset": "mlp", "options": {"hidden": [8]}},
        "train": {"epochs": 1, "batch_size": 8},
    }
    code = main(["train", write(tmp_path, cfg), "--run-dir", str(tmp_path / "run"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    warning = [line for line in err.splitlines() if "skipped 1 unreadable" in line]
    assert len(warning) == 1 and "dark/broken.png" in warning[0]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["data_report"]["skipped"][0]["path"] == "dark/broken.png"
    assert any("skipped 1 unreadable" in w for w in summary["warnings"])


def test_classes_without_training_examples_are_warned(tmp_path, capsys):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    y[0] = 4  # a stray label: classes 2 and 3 end up empty
    np.savez(tmp_path / "d.npz", X=rng.normal(size=(40, 3)).astype("float32"), y=y)
    cfg = {"data": {"source": "npz", "path": str(tmp_path / "d.npz")}, "train": {"epochs": 1}}
    assert main(["train", write(tmp_path, cfg), "--run-dir", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "2 class(es) have no training examples (2, 3)" in err


def test_predict_on_a_vector_run_reads_rows_of_csv_and_npy(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["train", write(tmp_path, SPIRAL), "--run-dir", str(run_dir)]) == 0
    (tmp_path / "points.csv").write_text("x,y\n0.1,0.2\n-0.5,0.3\n")
    np.save(tmp_path / "one.npy", np.array([[0.0, 0.4]], np.float32))
    capsys.readouterr()
    files = [str(tmp_path / "points.csv"), str(tmp_path / "one.npy")]
    assert main(["predict", str(run_dir), "--input", *files, "--top-k", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [r["file"] for r in rows] == [f"{files[0]}:1", f"{files[0]}:2", files[1]]
    assert all(len(r["top"]) == 1 and r["top"][0]["class"] in {"0", "1", "2"} for r in rows)

    np.save(tmp_path / "wide.npy", np.zeros((2, 3), np.float32))
    code = main(["predict", str(run_dir), "--input", str(tmp_path / "wide.npy")])
    one_error_line(capsys, code, 3, "holds rows of shape (3,) but this run takes (2,)")
    code = main(["predict", str(run_dir), "--input", str(tmp_path / "nothing.png")])
    one_error_line(capsys, code, 3, "does not exist")


def test_export_to_a_path_that_cannot_be_written_is_one_line(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                write(tmp_path, {**SPIRAL, "train": {**SPIRAL["train"], "epochs": 1}}),
                "--run-dir",
                str(run),
            ]
        )
        == 0
    )
    capsys.readouterr()
    (tmp_path / "afile").write_text("x")
    code = main(
        ["export", str(run), "--format", "safetensors", "--out", str(tmp_path / "afile" / "model.st")]
    )
    one_error_line(capsys, code, 6, "cannot write")
    code = main(["export", str(run), "--format", "safetensors", "--out", str(tmp_path)])
    one_error_line(capsys, code, 6, "it is a directory")
