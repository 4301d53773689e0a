"""Dashboard: the runs table's first page with 5,000 runs (target under 1 s), against the API's run list.

Measured in a child process on a fresh SQLite lab home (Django reads its settings once per process):
5,000 runs with realistic summaries (confusion matrix, per-class accuracy, data report) in one
project; the page and the API's ``/api/runs/?limit=50`` are each requested through Django's test
client, medians of 15 after one warm-up.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = 5000
REPEAT = 15


def child() -> dict:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from layerlab.apps.projects.services import project_create
    from layerlab.apps.runs.models import Run

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="Bench-pass-12345")
    project = project_create(owner=user, name="bench")
    classes = [str(i) for i in range(10)]
    summary = {
        "train_accuracy": 0.9, "val_accuracy": 0.85, "test_accuracy": 0.84, "test_loss": 0.4,
        "classes": classes, "confusion_matrix": [[10] * 10 for _ in classes],
        "per_class_accuracy": dict.fromkeys(classes, 0.8),
        "data_report": {"counts": {s: dict.fromkeys(classes, 100) for s in ("train", "val", "test")}},
    }  # fmt: skip
    config = {"data": {"source": "digits"}, "model": {"preset": "lenet5"}, "train": {"epochs": 10}}
    Run.objects.bulk_create(
        [
            Run(project=project, name=f"run {i}", status="succeeded", config=config, epochs=10, epoch=10,
                summary={**summary, "test_accuracy": (i % 1000) / 1000}, verdict="good fit, gap 1 points")
            for i in range(RUNS)
        ],
        batch_size=500,
    )  # fmt: skip
    browser = Client(SERVER_NAME="127.0.0.1")  # an allowed host
    browser.force_login(user)

    def median_seconds(url: str) -> float:
        assert browser.get(url).status_code == 200, url
        times = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            response = browser.get(url)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
        return statistics.median(times)

    return {
        "page": median_seconds("/"),
        "page_sorted": median_seconds("/?sort=-test&q=run"),
        "api": median_seconds("/api/runs/?limit=50"),
    }


def row(name, value, unit, reference="", ratio=None, target="", ok=None, note=""):
    return {"name": name, "value": value, "unit": unit, "reference": reference, "ratio": ratio,
            "target": target, "ok": ok, "note": note}  # fmt: skip


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="layerlab-bench-web-") as home:
        env = {**os.environ, "LAYERLAB_HOME": home, "DATABASE_URL": "",
               "DJANGO_SETTINGS_MODULE": "layerlab.server.settings"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_dashboard", "--child"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True,
        )  # fmt: skip
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    api = figures["api"]
    return [
        row(f"runs table, first page of {RUNS} runs", round(figures["page"] * 1000, 1), "ms",
            "GET /api/runs/?limit=50", round(figures["page"] / api, 2), "< 1000 ms", figures["page"] < 1.0),
        row(f"runs table sorted by test accuracy + search, {RUNS} runs", round(figures["page_sorted"] * 1000, 1),
            "ms", "GET /api/runs/?limit=50", round(figures["page_sorted"] / api, 2), "< 1000 ms",
            figures["page_sorted"] < 1.0),
    ]  # fmt: skip


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(child()))
    else:
        for item in run():
            print(item)
