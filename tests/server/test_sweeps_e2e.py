"""A sweep on a real ``layerlab serve``: a worker SIGKILLed mid-trial, the trial resumed from its checkpoint
by another worker and told to the study exactly once (no lost, no duplicated trial)."""

from __future__ import annotations

import os
import time
import uuid

import optuna
import pytest
from livelab import LiveLab

pytestmark = pytest.mark.e2e


PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test connect_timeout=3"


@pytest.fixture(params=["sqlite", "postgresql"])
def lab(request, tmp_path):
    if request.param == "sqlite":
        lab = LiveLab(tmp_path / "home")
        lab.home.mkdir()
        yield lab
        lab.stop()
        return
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):  # CI has PostgreSQL: this path must run there
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable in CI: {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    name = f"layerlab_sweep_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    lab = LiveLab(tmp_path / "home", database_url=f"postgres://postgres@127.0.0.1:5432/{name}")
    lab.home.mkdir()
    lab.optuna_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    try:
        yield lab
    finally:
        lab.stop()
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def test_a_sigkilled_trial_resumes_and_is_told_once(lab):
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "0", "--web-workers", "1")
    lab.wait_up(client)
    project = client.request("POST", "projects/", {"name": "sweep"})
    config = {
        "data": {"source": "spiral", "points_per_class": 1000},
        "model": {"preset": "mlp"},
        "train": {"epochs": 5, "batch_size": 8, "num_threads": 1},
        "sweep": {
            "method": "random",
            "parameters": {"train.lr": {"distribution": "loguniform", "low": 0.001, "high": 0.1}},
            "trials": 4,
            "parallel": 2,
            "seed": 3,
        },
    }
    sweep = client.request("POST", "sweeps/", {"project": project["id"], "config": config})
    trials = client.request("GET", f"sweeps/{sweep['id']}/trials/")["rows"]
    first = trials[0][4]  # the run of trial 0
    worker = lab.start("worker")
    deadline = time.monotonic() + 120
    while client.run(first)["progress"]["epoch"] < 2:
        assert time.monotonic() < deadline, lab.logs()
        assert worker.poll() is None, lab.logs()
        time.sleep(0.05)
    worker.kill()  # SIGKILL mid-trial: the run stays 'running', its trial untold
    worker.wait()
    assert client.run(first)["status"] == "running"
    lab.start("worker")  # re-queues the dead worker's run; it resumes from its checkpoint
    deadline = time.monotonic() + 240
    while (done := client.request("GET", f"sweeps/{sweep['id']}/"))["status"] == "running":
        assert time.monotonic() < deadline, lab.logs()
        time.sleep(0.5)
    assert done["status"] == "finished" and done["counts"]["complete"] == 4, (done, lab.logs())
    rows = client.request("GET", f"sweeps/{sweep['id']}/trials/")["rows"]
    assert sorted(row[0] for row in rows) == [0, 1, 2, 3]
    assert len({row[4] for row in rows}) == 4  # one run per trial
    assert client.run(first)["attempts"] == 2
    storage = getattr(lab, "optuna_url", f"sqlite:///{lab.home / 'optuna.sqlite3'}")
    study = optuna.load_study(study_name=done["study_name"], storage=storage)
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
