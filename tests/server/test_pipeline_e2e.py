"""A pipeline through real processes: ``layerlab serve --luigid`` (gunicorn, a worker, luigid) and the CLI."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import yaml
from livelab import LiveLab, free_port

from layerlab.core.errors import LayerlabError
from layerlab.pipelines.runner import scheduler_check

pytestmark = pytest.mark.e2e

PIPELINE = {
    "name": "e2e",
    "project": "pipes",
    "stages": {
        "spiral": {"kind": "dataset", "data": {"source": "spiral", "points_per_class": 30}},
        "base": {
            "kind": "train",
            "dataset": "spiral",
            "timeout": 240,
            "config": {"model": {"preset": "mlp"}, "train": {"epochs": 2, "batch_size": 32}},
        },
        "holdout": {"kind": "evaluate", "run": "base", "data": {"source": "spiral", "points_per_class": 10}},
        "script": {"kind": "export", "run": "base", "format": "torchscript"},
        "summary": {"kind": "report", "inputs": ["base", "holdout", "script"]},
    },
}


def test_a_pipeline_trains_on_the_labs_worker_through_luigid(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    luigid_port = free_port()
    lab.start(
        "serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1", "--luigid", str(luigid_port)
    )
    url = f"http://127.0.0.1:{luigid_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                scheduler_check(url)
                break
            except LayerlabError:
                assert time.monotonic() < deadline, lab.logs()
                time.sleep(0.5)
        path = tmp_path / "pipeline.yaml"
        path.write_text(yaml.safe_dump(PIPELINE))
        env = {**lab.env, "LAYERLAB_USER": "alice"}
        command = [
            sys.executable,
            "-m",
            "layerlab.cli.main",
            "pipeline",
            "run",
            str(path),
            "--scheduler-url",
            url,
        ]
        first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert first.returncode == 0, first.stderr + lab.logs()
        assert first.stdout.count(" done") == 5, first.stdout
        again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
        assert again.returncode == 0 and again.stdout.count("skipped") == 5, again.stdout + again.stderr
    finally:
        lab.stop()
