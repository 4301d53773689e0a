"""End to end with real processes: ``layerlab serve`` (gunicorn + workers) trains tiny networks.

SQLite with one embedded worker; PostgreSQL (127.0.0.1:5432, skipped when absent) with two
workers, each run executed exactly once; a worker SIGKILLed mid-run is recovered.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path

import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e

TINY = {"model": {"preset": "mlp"}, "train": {"epochs": 2, "num_threads": 1}}
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


def metrics_lines(run_dir: str) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def lab(tmp_path):
    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    yield lab
    lab.stop()


def test_serve_trains_a_posted_run_to_success(lab):
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1")
    lab.wait_up(client)
    project = client.request("POST", "projects/", {"name": "e2e"})
    run = client.submit_run(project["id"], TINY, name="tiny")
    assert run["status"] == "queued"
    done = client.wait(run["id"], timeout=120)
    assert done["status"] == "succeeded", (done["error"], lab.logs())
    assert done["progress"]["epoch"] == 2 and done["attempts"] == 1
    assert done["summary"]["test_accuracy"] is not None and done["verdict"]
    numbered = [c["epoch"] for c in done["checkpoints"] if Path(c["path"]).name.startswith("epoch-")]
    assert numbered == [1, 2]  # best.ckpt and last.ckpt are listed too
    assert {Path(c["path"]).name for c in done["checkpoints"]} >= {"best.ckpt", "last.ckpt"}
    assert all(not Path(c["path"]).is_absolute() for c in done["checkpoints"])  # no server paths shown
    assert all((lab.home / "runs" / str(run["id"]) / c["path"]).is_file() for c in done["checkpoints"])
    series = client.metrics(run["id"])
    assert series["train_loss"]["steps"] == [1, 2] and series["val_accuracy"]["total"] == 2
    entries = client.request("GET", "journal/", query={"run": run["id"]})["results"]
    assert len(entries) == 1 and entries[0]["automatic"]

    # fine-tune: a new run starting from this one's weights
    child = client.request("POST", f"runs/{run['id']}/fine-tune/", {"overrides": ["train.epochs=1"]})
    finished = client.wait(child["id"], timeout=120)
    assert finished["status"] == "succeeded" and finished["parent"] == run["id"], finished["error"]
    assert finished["summary"]["init_from"]
    assert client.run(run["id"])["children"] == [child["id"]]

    # cancel: a long run stops after its current step
    long = client.submit_run(project["id"], {**TINY, "train": {"epochs": 500, "num_threads": 1}})
    while client.run(long["id"])["status"] == "queued":
        time.sleep(0.05)
    client.request("POST", f"runs/{long['id']}/cancel/")
    stopped = client.wait(long["id"], timeout=60)
    assert stopped["status"] == "cancelled" and stopped["progress"]["epoch"] < 500


def test_a_sigkilled_worker_is_recovered_without_losing_or_duplicating_points(lab):
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "0", "--web-workers", "1")
    lab.wait_up(client)
    project = client.request("POST", "projects/", {"name": "kill"})
    config = {
        "data": {"source": "spiral", "points_per_class": 2000},
        "model": {"preset": "mlp"},
        "train": {"epochs": 16, "batch_size": 8, "num_threads": 1},
    }
    run = client.submit_run(project["id"], config)
    worker = lab.start("worker")
    deadline = time.monotonic() + 120
    while client.run(run["id"])["progress"]["epoch"] < 2:
        assert time.monotonic() < deadline, lab.logs()
        assert worker.poll() is None, lab.logs()
        time.sleep(0.05)
    worker.kill()  # SIGKILL: no cleanup, the run stays 'running'
    worker.wait()
    killed_at = client.run(run["id"])
    assert killed_at["status"] == "running" and killed_at["progress"]["epoch"] < 16
    lab.start("worker")  # sees the dead worker's run and re-queues it
    done = client.wait(run["id"], timeout=180)
    assert done["status"] == "succeeded", (done["error"], lab.logs())
    assert done["attempts"] == 2
    series = client.metrics(run["id"])
    assert series["train_loss"]["steps"] == list(range(1, 17))  # each epoch once, none lost
    assert [row["epoch"] for row in metrics_lines(done["summary"]["run_dir"])] == list(range(1, 17))


@pytest.fixture
def pg_lab(tmp_path):
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):  # CI has PostgreSQL: the PostgreSQL path must run there, never skip
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable in CI: {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    name = f"layerlab_e2e_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    lab = LiveLab(tmp_path / "home", database_url=f"postgres://postgres@127.0.0.1:5432/{name}")
    lab.home.mkdir()
    try:
        yield lab
    finally:
        lab.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_postgres_two_workers_execute_each_run_exactly_once(pg_lab):
    lab = pg_lab
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "2", "--web-workers", "1")
    lab.wait_up(client)
    project = client.request("POST", "projects/", {"name": "pg"})
    runs = [client.submit_run(project["id"], {**TINY, "seed": seed}) for seed in range(4)]
    finished = [client.wait(run["id"], timeout=180) for run in runs]
    assert [run["status"] for run in finished] == ["succeeded"] * 4, lab.logs()
    assert [run["attempts"] for run in finished] == [1] * 4
    for run in finished:
        # One execution writes each epoch once; two executions of one run would double the file.
        assert [row["epoch"] for row in metrics_lines(run["summary"]["run_dir"])] == [1, 2]
        assert client.metrics(run["id"])["train_loss"]["total"] == 2
