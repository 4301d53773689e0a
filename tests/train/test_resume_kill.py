"""Exact resume after SIGKILL: a real `layerlab train` process is killed and resumed with --resume."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml

CONFIG = {
    "seed": 7,
    "data": {"source": "spiral", "points_per_class": 700},
    "model": {"preset": "mlp", "options": {"hidden": [48], "dropout": 0.1}},
    "train": {"epochs": 30, "batch_size": 32, "lr": 0.005, "num_threads": 1, "schedule": {"kind": "cosine"}},
}


def layerlab(*args, env, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "layerlab.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def last_json(process) -> dict:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_sigkill_then_resume_gives_the_uninterrupted_weights(tmp_path):
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "OMP_NUM_THREADS": "1"}
    config = tmp_path / "spiral.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    whole = layerlab("train", str(config), "--run-dir", str(tmp_path / "whole"), "--json", env=env)

    cut_dir = tmp_path / "cut"
    cut = layerlab("train", str(config), "--run-dir", str(cut_dir), "--json", env=env)
    marker = cut_dir / "checkpoints" / "epoch-0002.ckpt"
    deadline = time.monotonic() + 60
    while not marker.exists() and cut.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(cut.pid, signal.SIGKILL)
    cut.communicate()
    assert cut.returncode == -signal.SIGKILL
    assert marker.exists() and not (cut_dir / "summary.json").exists(), "the run ended before it was killed"

    resumed = last_json(layerlab("train", "--resume", str(cut_dir), "--json", env=env))
    expected = last_json(whole)
    assert resumed["epochs"] == expected["epochs"] == 30
    assert resumed["weights_sha256"] == expected["weights_sha256"]
    assert {"run_dir", "train_accuracy", "val_accuracy", "test_accuracy", "test_loss", "seconds"} <= set(
        resumed
    )
    epochs = [json.loads(line)["epoch"] for line in (cut_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 31))
