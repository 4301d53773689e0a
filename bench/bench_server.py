"""Lab server benchmarks: metric ingestion and reads against the MLflow tracking server, queue latency.

Both servers run on this machine on SQLite. layerlab: ``layerlab serve`` (gunicorn, 4 web workers);
MLflow: ``mlflow server`` from its own virtual environment (``LAYERLAB_BENCH_MLFLOW_VENV``, default
``.layerlab/bench-mlflow-venv``, created with a pinned MLflow on first use; its rows are skipped,
with a note, when it cannot be installed). Each figure is the better of two rounds, for both servers. The same HTTP
client code (urllib, JSON) drives both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BATCH = 1_000
BATCHES = 40  # per client
SERIES_POINTS = 100_000
CONCURRENT = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http(method: str, url: str, body=None, headers=None) -> tuple[int, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()[:300]


def wait_http(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


class Target:
    """What the benchmark needs from a tracking server."""

    name = ""

    def new_run(self) -> str: ...
    def log(self, run: str, name: str, steps: range, value_of) -> int: ...
    def read(self, run: str, name: str, points: int | None) -> int: ...
    def list_runs(self) -> int: ...


class Layerlab(Target):
    name = "layerlab"

    def __init__(self, home: Path):
        self.env = {
            **os.environ,
            "LAYERLAB_HOME": str(home),
            "DATABASE_URL": "",
            "LAYERLAB_THROTTLE_USER": "10000000/min",
        }
        self.port = free_port()
        cli = [sys.executable, "-m", "layerlab.cli.main"]
        subprocess.run([*cli, "migrate", "--quiet"], env=self.env, check=True)
        subprocess.run(
            [*cli, "createuser", "bench"],
            input="Bench-pass-12345\n",
            text=True,
            env=self.env,
            check=True,
            capture_output=True,
        )
        token = subprocess.run(
            [*cli, "token", "bench"], env=self.env, check=True, capture_output=True, text=True
        ).stdout.strip()
        self.headers = {"Authorization": f"Token {token}"}
        self.process = subprocess.Popen(
            [*cli, "serve", "--port", str(self.port), "--workers", "1", "--web-workers", "4", "--no-migrate"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/api"
        wait_http(f"{self.url}/auth/me/")
        self.project = self.call("POST", "projects/", {"name": "bench"})["id"]

    def call(self, method, path, body=None):
        status, data = http(method, f"{self.url}/{path}", body, self.headers)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data

    def new_run(self) -> str:
        return self.call("POST", "runs/", {"project": self.project, "origin": "client"})["id"]

    def log(self, run, name, steps, value_of) -> int:
        series = [{"name": name, "steps": list(steps), "values": [value_of(s) for s in steps]}]
        return self.call("POST", f"runs/{run}/metrics/", {"series": series})["stored"]

    def read(self, run, name, points) -> int:
        query = f"?name={name}" + (f"&points={points}" if points else "")
        return len(self.call("GET", f"runs/{run}/metrics/{query}")["series"][name]["steps"])

    def list_runs(self) -> int:
        return len(self.call("GET", "runs/?limit=1000")["results"])

    def queue_latency(self) -> float:
        config = {"model": {"preset": "mlp"}, "train": {"epochs": 1, "num_threads": 1}}
        run = self.call("POST", "runs/", {"project": self.project, "config": config})
        start = time.perf_counter()
        while self.call("GET", f"runs/{run['id']}/")["status"] == "queued":
            time.sleep(0.01)
        return time.perf_counter() - start

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=30)


class Mlflow(Target):
    name = "MLflow"

    def __init__(self, home: Path, venv: Path):
        self.port = free_port()
        self.process = subprocess.Popen(
            [str(venv / "bin" / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(self.port),
             "--backend-store-uri", f"sqlite:///{home}/mlflow.db", "--default-artifact-root", str(home / "artifacts"),
             "--workers", "4"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{self.port}/api/2.0/mlflow"
        wait_http(f"http://127.0.0.1:{self.port}/health", timeout=120)
        self.experiment = self.call("POST", "experiments/create", {"name": "bench"})["experiment_id"]

    def call(self, method, path, body=None):
        status, data = http(method, f"{self.url}/{path}", body)
        if status >= 300:
            raise RuntimeError(f"{method} {path}: {status} {data}")
        return data

    def new_run(self) -> str:
        return self.call("POST", "runs/create", {"experiment_id": self.experiment})["run"]["info"]["run_id"]

    def log(self, run, name, steps, value_of) -> int:
        metrics = [{"key": name, "value": value_of(s), "timestamp": 0, "step": s} for s in steps]
        self.call("POST", "runs/log-batch", {"run_id": run, "metrics": metrics})
        return len(metrics)

    def read(self, run, name, points) -> int:
        # MLflow has no downsampling: a chart reads the whole history, page by page.
        total, token = 0, None
        while True:
            query = f"metrics/get-history?run_id={run}&metric_key={name}&max_results=25000"
            data = self.call("GET", query + (f"&page_token={token}" if token else ""))
            total += len(data.get("metrics", []))
            token = data.get("next_page_token")
            if not token:
                return total

    def list_runs(self) -> int:
        return len(
            self.call("POST", "runs/search", {"experiment_ids": [self.experiment], "max_results": 1000})[
                "runs"
            ]
        )

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()


def ingest_rate(target: Target, clients: int) -> tuple[float, bool]:
    """Points per second with 1,000-point batches; also whether the stored count equals the sent count."""
    runs = [target.new_run() for _ in range(clients)]
    errors: list[str] = []
    reader_stop = threading.Event()

    def client(run):
        try:
            for b in range(BATCHES):
                target.log(run, "loss", range(b * BATCH, (b + 1) * BATCH), lambda s: 1.0 / (s + 1))
        except Exception as exc:  # a 5xx is a finding
            errors.append(str(exc))

    def reader():
        while not reader_stop.is_set():
            try:
                target.read(runs[0], "loss", 500)
            except Exception as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=client, args=(run,)) for run in runs]
    watcher = threading.Thread(target=reader) if clients > 1 else None
    start = time.perf_counter()
    for t in threads:
        t.start()
    if watcher:
        watcher.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    reader_stop.set()
    if watcher:
        watcher.join()
    complete = not errors and all(target.read(run, "loss", None) == BATCHES * BATCH for run in runs)
    return clients * BATCHES * BATCH / elapsed, complete


def small_batch_latency(target: Target, n: int = 200) -> tuple[float, float]:
    run = target.new_run()
    times = []
    for i in range(n):
        start = time.perf_counter()
        target.log(run, "acc", range(i * 10, i * 10 + 10), float)
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2] * 1000, times[int(len(times) * 0.99) - 1] * 1000


def series_read(target: Target, points: int | None) -> float:
    if not hasattr(target, "series_run"):
        target.series_run = target.new_run()
        for b in range(SERIES_POINTS // BATCH):
            target.log(
                target.series_run, "long", range(b * BATCH, (b + 1) * BATCH), lambda s: (s % 977) / 977
            )
    times = []
    for _ in range(5):
        start = time.perf_counter()
        target.read(target.series_run, "long", points)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def list_runs(target: Target) -> float:
    for _ in range(1000 - 20):
        target.new_run()
    times = []
    for _ in range(3):
        start = time.perf_counter()
        target.list_runs()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


PHASES = [
    ("ingest_1", lambda t: ingest_rate(t, 1)),
    ("ingest_4", lambda t: ingest_rate(t, CONCURRENT)),
    ("latency", small_batch_latency),
    ("read_full", lambda t: series_read(t, None)),
    ("read_chart", lambda t: series_read(t, 1000)),
    ("list", list_runs),
]


def measure(targets: list[Target]) -> dict[str, dict]:
    """Every phase on every target, alternating which goes first (the machine's load drifts)."""
    results: dict[str, dict] = {t.name: {} for t in targets}
    for index, (phase, fn) in enumerate(PHASES):
        for target in targets if index % 2 == 0 else targets[::-1]:
            results[target.name][phase] = fn(target)
    for values in results.values():
        (values["ingest_1"], ok1), (values["ingest_4"], ok4) = values["ingest_1"], values["ingest_4"]
        values["complete"] = ok1 and ok4
        values["p50"], values["p99"] = values.pop("latency")
    return results


def best_of(first: dict[str, dict], second: dict[str, dict]) -> dict[str, dict]:
    """The better of two rounds per figure, for every target alike (the shared machine's load drifts)."""
    best = {}
    for name, values in first.items():
        other = second[name]
        best[name] = {
            key: (max if key.startswith("ingest") else min)(value, other[key])
            if key != "complete"
            else value and other[key]
            for key, value in values.items()
        }
    return best


MLFLOW_PIN = "mlflow==3.17.2"


def ensure_mlflow(venv: Path) -> str:
    """Create the benchmark's own MLflow environment when missing; '' when ready, else why not."""
    if (venv / "bin" / "mlflow").exists():
        return ""
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300
        )
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", MLFLOW_PIN],
            check=True,
            capture_output=True,
            timeout=900,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        return f"MLflow could not be installed into {venv}: {exc}"
    return ""


def row(name, value, unit, reference="", ratio=None, target="", ok=None, note=""):
    return {
        "name": name,
        "value": value,
        "unit": unit,
        "reference": reference,
        "ratio": ratio,
        "target": target,
        "ok": ok,
        "note": note,
    }


def run() -> list[dict]:
    venv = Path(os.environ.get("LAYERLAB_BENCH_MLFLOW_VENV", ROOT / ".layerlab" / "bench-mlflow-venv"))
    missing = ensure_mlflow(venv)
    tmp = Path(tempfile.mkdtemp(prefix="layerlab-bench-server-"))
    rows: list[dict] = []
    targets: list[Target] = []
    try:
        lab = Layerlab(tmp / "layerlab")
        targets.append(lab)
        if (venv / "bin" / "mlflow").exists():
            (tmp / "mlflow").mkdir()
            targets.append(Mlflow(tmp / "mlflow", venv))
        for _ in range(2):  # every web worker has served requests, and start-up work has settled
            for target in targets:
                warm = target.new_run()
                for _ in range(16):
                    target.log(warm, "warmup", range(10), float)
                    target.read(warm, "warmup", 4)
            time.sleep(5)
        results = best_of(measure(targets), measure(targets))
        latency = statistics.median(lab.queue_latency() for _ in range(5))
    finally:
        for target in targets:
            target.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    results = {"layerlab": results["layerlab"], "mlflow": results.get("MLflow")}
    ours, theirs = results["layerlab"], results["mlflow"]
    ref = "MLflow tracking server, same machine, SQLite" if theirs else "MLflow not installed"

    def ratio(key, higher_is_better=True):
        if not theirs:
            return None
        return ours[key] / theirs[key] if higher_is_better else theirs[key] / ours[key]

    r1, r4 = ratio("ingest_1"), ratio("ingest_4")
    rows += [
        row("ingest, 1 client, 1,000-point batches", ours["ingest_1"], "points/s", ref, r1, ">= 5x MLflow", None if r1 is None else r1 >= 5),
        row(f"ingest, {CONCURRENT} clients + 1 reader", ours["ingest_4"], "points/s", ref, r4, ">= 5x MLflow", None if r4 is None else r4 >= 5),
        row("stored count == sent count, no 5xx", 1.0 if ours["complete"] else 0.0, "bool", "", None, "yes", ours["complete"]),
        row("10-point batch latency p50", ours["p50"], "ms", ref, ratio("p50", False)),
        row("10-point batch latency p99", ours["p99"], "ms", ref, ratio("p99", False)),
        row("read 100,000-point series, full", ours["read_full"], "ms", ref, ratio("read_full", False)),
        row("read 100,000-point series for a chart (1,000 points)", ours["read_chart"], "ms",
            "MLflow full history" if theirs else "", None if not theirs else theirs["read_full"] / ours["read_chart"], "< 50 ms",
            ours["read_chart"] < 50),
        row("list 1,000 runs", ours["list"], "ms", ref, ratio("list", False)),
        row("queue latency, POST to running (idle worker)", latency * 1000, "ms", "", None, "< 1000 ms", latency < 1.0),
    ]  # fmt: skip
    if theirs:
        units = {"ingest_1": "points/s", "ingest_4": "points/s"}
        rows += [
            row(f"MLflow: {k}", v, units.get(k, "ms"), "", None) for k, v in theirs.items() if k != "complete"
        ]
    elif missing:
        rows[0]["note"] = missing
    return rows


if __name__ == "__main__":
    for r in run():
        print(r)
