"""Workers on two hosts share one PostgreSQL and one file storage; a host's SIGKILLed worker loses nothing.

Two network namespaces stand for two machines (CI runs as root; skipped where namespaces cannot be
made): each has its own address on a veth link to the root namespace, where a TCP relay forwards
to the machine's PostgreSQL (127.0.0.1:5432, a database of this test's own). Each host has its own
``LAYERLAB_HOME`` (working copies, cache) and ``LAYERLAB_WORKER_NAME``; the storage is one shared
folder, as a shared mount or an object store would be. ``layerlab serve`` (the API, no workers)
runs in the root namespace. Eight runs are each executed exactly once across both hosts; host A's
worker is SIGKILLed mid-run and the run finishes on host B from the last checkpoint A published.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from livelab import LiveLab

from netns import TcpRelay, netns_hosts, netns_required

pytestmark = pytest.mark.e2e

PG = ("127.0.0.1", 5432)
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres connect_timeout=3"
RUNS = 8
EPOCHS = 6
CONFIG = {
    "data": {"source": "spiral", "points_per_class": 600},
    "model": {"preset": "mlp"},
    "train": {"epochs": EPOCHS, "batch_size": 8, "num_threads": 1},
}


@pytest.fixture
def pg_database():
    """A PostgreSQL database of this test's own (other tests use the server at the same time)."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL on 127.0.0.1:5432 is not reachable in CI: {exc}")
        pytest.skip(f"PostgreSQL on 127.0.0.1:5432 is not reachable: {exc}")
    name = f"layerlab_hosts_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


class TwoHosts:
    """The lab's API in the root namespace and one ``layerlab worker`` per namespace."""

    def __init__(self, tmp_path: Path, database: str, hosts):
        self.tmp_path = tmp_path
        self.database = database
        self.hosts = hosts
        self.storage = tmp_path / "shared-storage"
        self.storage.mkdir()
        self.lab = LiveLab(tmp_path / "server", database_url=f"postgres://postgres@127.0.0.1:5432/{database}")
        self.lab.home.mkdir()
        self.lab.env["LAYERLAB_STORAGE"] = json.dumps(
            {
                "BACKEND": "django.core.files.storage.FileSystemStorage",
                "OPTIONS": {"location": str(self.storage)},
            }
        )
        self.relays = [TcpRelay((host.gateway, 0), PG) for host in hosts]
        self.workers: dict[str, subprocess.Popen] = {}
        self.logs: dict[str, Path] = {}

    def home(self, name: str) -> Path:
        return self.tmp_path / name

    def start_worker(self, index: int) -> subprocess.Popen:
        host, relay = self.hosts[index], self.relays[index]
        name = f"host-{'ab'[index]}"
        home = self.home(name)
        home.mkdir(exist_ok=True)
        env = {
            **self.lab.env,
            "LAYERLAB_HOME": str(home),  # its own working copies and cache, as on another machine
            "DATABASE_URL": f"postgres://postgres@{relay.address[0]}:{relay.address[1]}/{self.database}",
            "LAYERLAB_WORKER_NAME": name,
            "LAYERLAB_STALE_SECONDS": "3",  # a host silent for 3 s is taken for dead
            "OMP_NUM_THREADS": "1",
            "LAYERLAB_LOG_LEVEL": "INFO",  # the engine's "resuming ... (epoch N)" line is checked
        }
        self.logs[name] = home / "worker.log"
        with open(self.logs[name], "w") as log:
            process = subprocess.Popen(
                host.command(sys.executable, "-m", "layerlab.cli.main", "worker"),
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.workers[name] = process
        return process

    def all_logs(self) -> str:
        texts = [f"--- {n}\n{p.read_text(errors='replace')[-3000:]}" for n, p in self.logs.items()]
        return self.lab.logs() + "\n" + "\n".join(texts)

    def stop(self) -> None:
        for process in self.workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.workers.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.lab.stop()
        for relay in self.relays:
            relay.close()


@pytest.fixture
def netns_ok():
    netns_required()  # skips before a database is made


@pytest.fixture
def two_hosts(netns_ok, tmp_path, pg_database):
    with netns_hosts(2, uplink=True, subnet="10.78") as hosts:
        lab = TwoHosts(tmp_path, pg_database, hosts)
        try:
            yield lab
        finally:
            lab.stop()


def rows(database: str, query: str, *params) -> list[tuple]:
    import psycopg

    with psycopg.connect(f"host=127.0.0.1 port=5432 user=postgres dbname={database}") as db:
        return db.execute(query, params).fetchall()


def stored_epochs(storage: Path, run_id: int) -> list[int]:
    text = (storage / "runs" / str(run_id) / "metrics.jsonl").read_text()
    return [json.loads(line)["epoch"] for line in text.splitlines() if line.strip()]


def lab_up(two_hosts: TwoHosts):
    """Migrate, start the API (no workers of its own) and one worker per host; the user's client."""
    lab = two_hosts.lab
    lab.cli("migrate", "--quiet")
    client = lab.user_client()
    lab.start("serve", "--port", str(lab.port), "--workers", "0", "--web-workers", "1")
    lab.wait_up(client)
    two_hosts.start_worker(0)
    two_hosts.start_worker(1)
    return client


def kill_host_a_mid_run(two_hosts: TwoHosts) -> tuple[int, int]:
    """SIGKILL host A's worker in the middle of a run that has published a checkpoint; (run, its epoch)."""
    a = two_hosts.workers["host-a"]
    deadline = time.monotonic() + 120
    while True:
        assert time.monotonic() < deadline, two_hosts.all_logs()
        assert a.poll() is None, two_hosts.all_logs()
        mid = rows(
            two_hosts.database,
            "SELECT r.id, max(c.epoch) FROM runs_run r JOIN runs_checkpoint c ON c.run_id = r.id "
            "WHERE r.status = 'running' AND r.worker = %s AND c.path LIKE %s GROUP BY r.id",
            f"host-a:{a.pid}",  # `ip netns exec` runs the worker itself: its pid is the one recorded
            "%/checkpoints/last.ckpt",
        )
        if mid and mid[0][1] < EPOCHS - 1:
            break
        time.sleep(0.05)
    a.send_signal(signal.SIGKILL)
    a.wait()
    return mid[0]


def check_once_each_and_resumed(two_hosts: TwoHosts, client, finished: dict, killed: int, checkpointed: int):
    """Every run succeeded once (the killed one twice: on A, then on B from A's checkpoint), nothing
    lost or doubled in the database or the stored files."""
    ids = list(finished)
    assert killed in ids
    assert [r["status"] for r in finished.values()] == ["succeeded"] * len(ids), two_hosts.all_logs()
    workers = dict(rows(two_hosts.database, "SELECT id, worker FROM runs_run WHERE id = ANY(%s)", ids))
    hosts = {run_id: worker.rpartition(":")[0] for run_id, worker in workers.items()}
    assert set(hosts.values()) <= {"host-a", "host-b"}
    # The killed run ended on host B, in its second execution; every other run ran exactly once.
    assert hosts[killed] == "host-b" and finished[killed]["attempts"] == 2
    assert all(finished[i]["attempts"] == 1 for i in ids if i != killed)
    # Resumed from the checkpoint host A had published, not started over.
    log = two_hosts.logs["host-b"].read_text()
    working = re.escape(str(two_hosts.home("host-b").resolve() / "runs" / str(killed)))  # B's own copy
    resumed = re.search(rf"resuming {working} from \S+ \(epoch (\d+)\)", log)
    assert resumed, log[-3000:]
    assert checkpointed <= int(resumed.group(1)) < EPOCHS
    for run_id in ids:
        # Nothing lost, nothing twice: each epoch once in the database and in the stored metrics file
        # (the killed run's epochs before the kill came from host A through the storage).
        series = client.metrics(run_id)
        assert series["train_loss"]["steps"] == list(range(1, EPOCHS + 1)), run_id
        assert stored_epochs(two_hosts.storage, run_id) == list(range(1, EPOCHS + 1)), run_id
        listed = [c["path"] for c in finished[run_id]["checkpoints"]]
        assert len(listed) == len(set(listed)), listed  # one row per checkpoint file, whichever host wrote it
    with contextlib.suppress(FileNotFoundError):  # the API's home saw no training at all
        assert not any((two_hosts.lab.home / "runs").iterdir())


def test_runs_spread_over_two_hosts_once_each_and_a_killed_hosts_run_resumes_on_the_other(two_hosts):
    client = lab_up(two_hosts)
    project = client.request("POST", "projects/", {"name": "hosts"})
    ids = [client.submit_run(project["id"], {**CONFIG, "seed": seed})["id"] for seed in range(RUNS)]
    killed, checkpointed = kill_host_a_mid_run(two_hosts)
    finished = {run_id: client.wait(run_id, timeout=150) for run_id in ids}
    check_once_each_and_resumed(two_hosts, client, finished, killed, checkpointed)


SWEEP = {
    "method": "random",
    "seed": 3,
    "parameters": {"train.lr": {"distribution": "loguniform", "low": 0.003, "high": 0.1}},
    "metric": "val_accuracy",
    "goal": "maximize",
    "trials": RUNS,
    "parallel": 4,  # trials are asked as others finish, by whichever host finished one
}


def test_a_sweep_of_8_trials_over_two_hosts_tells_each_trial_once_through_a_sigkill(two_hosts):
    pytest.importorskip("optuna", reason="sweeps need optuna")
    try:
        import layerlab.apps.sweeps.services  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"the sweeps app is not here: {exc}")
    client = lab_up(two_hosts)
    project = client.request("POST", "projects/", {"name": "hosts"})
    sweep = client.request(
        "POST", "sweeps/", {"project": project["id"], "config": {**CONFIG, "sweep": SWEEP}}
    )
    killed, checkpointed = kill_host_a_mid_run(two_hosts)
    deadline = time.monotonic() + 240
    while (state := client.request("GET", f"sweeps/{sweep['id']}/"))["status"] == "running":
        assert time.monotonic() < deadline, two_hosts.all_logs()
        time.sleep(0.5)
    assert state["status"] == "finished", state
    table = client.request("GET", f"sweeps/{sweep['id']}/trials/")
    trials = [dict(zip(table["columns"], row, strict=True)) for row in table["rows"]]
    assert [t["number"] for t in trials] == list(range(RUNS))  # every trial once, none lost, none extra
    assert [t["state"] for t in trials] == ["complete"] * RUNS, trials
    assert len({t["run"] for t in trials}) == RUNS
    finished = {t["run"]: client.run(t["run"]) for t in trials}
    check_once_each_and_resumed(two_hosts, client, finished, killed, checkpointed)
    # Optuna's own record (its tables in the lab's PostgreSQL): eight trials, each told one value.
    told = rows(
        two_hosts.database,
        "SELECT t.number, t.state::text, count(v.trial_value_id) FROM trials t "
        "JOIN studies s ON s.study_id = t.study_id JOIN sweeps_sweep w ON w.study_name = s.study_name "
        "LEFT JOIN trial_values v ON v.trial_id = t.trial_id WHERE w.id = %s GROUP BY t.number, t.state "
        "ORDER BY t.number",
        sweep["id"],
    )
    assert told == [(number, "COMPLETE", 1) for number in range(RUNS)], told
