"""Serving: ``layerlab serve-model`` on signnet against a minimal hand-written server, same machine, same run.

The reference is what one writes in ten minutes: ``http.server.ThreadingHTTPServer`` (HTTP/1.1
keep-alive) + the eager torch model, one request at a time, same decoding and preprocessing. Both
answer a 64x64 grey PNG with the top-3 classes. Measured with ``layerlab loadtest``'s generator:
open loop at 100 requests/s (latency from each request's due time), then closed loop with 8 clients
(throughput). The signnet run is trained for one epoch on synthetic photos (weights do not matter
for speed). ``LAYERLAB_BENCH_QUICK=1`` measures shorter windows.
Usage: ``python -m bench.bench_serving``; ``python -m bench.bench_serving --baseline RUN PORT`` is the reference.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

QUICK = os.environ.get("LAYERLAB_BENCH_QUICK") == "1"
RATE = 100
OPEN_SECONDS = 4 if QUICK else 10
CLOSED_SECONDS = 3 if QUICK else 8
CLIENTS = 8
ROOT = Path(__file__).resolve().parents[1]


def make_run(root: Path) -> tuple[Path, Path]:
    """A signnet run on 60 synthetic 64x64 grey photos, one epoch; returns (run dir, a request image)."""
    import numpy as np
    import torch
    from PIL import Image

    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import train_experiment

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    for label in range(10):
        folder = root / "data" / str(label)
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = experiment_from_mapping(
        {
            "data": {"source": "imagefolder", "path": str(root / "data"), "size": [64, 64], "channels": 1},
            "model": {"preset": "signnet"},
            "train": {"epochs": 1, "batch_size": 16},
        }
    )
    train_experiment(cfg, root / "run", device="cpu", cache_dir=root / "cache")
    return root / "run", root / "data" / "3" / "0.png"


def baseline_server(run: str, port: int) -> None:
    """The reference: standard-library HTTP + eager torch, one request at a time per thread."""
    import io
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import numpy as np
    import torch
    from PIL import Image

    from layerlab.data.preprocess import Preprocessing
    from layerlab.inference.trained import load_trained

    trained = load_trained(run)
    pre = Preprocessing.from_dict(trained.preprocessing)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            self.answer({"status": "ready"})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            image = Image.open(io.BytesIO(body)).convert("L").resize(tuple(pre.size[::-1]))
            x = pre.apply(np.asarray(image, dtype=np.uint8)[None, None])
            with torch.no_grad():
                probs = torch.softmax(trained.model(x), dim=1)[0]
            values, indices = probs.topk(3)
            top = [
                {"class": trained.classes[i], "probability": float(p)}
                for p, i in zip(values.tolist(), indices.tolist(), strict=True)
            ]
            self.answer({"predictions": [{"top": top}]})

        def answer(self, payload):
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 120) -> dict:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited: {process.stdout.read()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {seconds} s")


def measure(url: str, image: Path) -> dict:
    from layerlab.inference.loadtest import load_test, payload_from_file

    payload = payload_from_file(image)
    load_test(url, payload, rate=0, duration=1.0, concurrency=CLIENTS)  # warm-up
    open_loop = load_test(url, payload, rate=RATE, duration=OPEN_SECONDS, concurrency=CLIENTS)
    closed = load_test(url, payload, rate=0, duration=CLOSED_SECONDS, concurrency=CLIENTS)
    return {"open": open_loop, "closed": closed}


def serve(command: list[str]) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as tmp:
        run_dir, image = make_run(Path(tmp))
        results = {}
        ready = {}
        for name in ("layerlab", "baseline"):
            port = free_port()
            if name == "layerlab":
                command = [
                    sys.executable,
                    "-m",
                    "layerlab.cli.main",
                    "serve-model",
                    str(run_dir),
                    "--port",
                    str(port),
                ]
            else:
                command = [sys.executable, "-m", "bench.bench_serving", "--baseline", str(run_dir), str(port)]
            process = serve(command)
            try:
                ready[name] = wait_ready(f"http://127.0.0.1:{port}/readyz", process)
                results[name] = measure(f"http://127.0.0.1:{port}/predict", image)
            finally:
                stop(process)
    ours, ref = results["layerlab"], results["baseline"]
    p50 = ours["open"]["latency_ms"]["p50"]
    ref_p50 = ref["open"]["latency_ms"]["p50"]
    tput, ref_tput = ours["closed"]["throughput_rps"], ref["closed"]["throughput_rps"]
    info = ready["layerlab"]
    batching = info.get("batching", {})
    curve = ", ".join(f"{r['batch']}: {r['items_per_s']:,.0f}/s" for r in batching.get("curve", []))

    def lat(result):
        v = result["open"]["latency_ms"]
        return f"p50 {v['p50']:.2f} / p90 {v['p90']:.2f} / p99 {v['p99']:.2f} ms"

    return [
        {
            "name": f"signnet serve-model: p50 latency at {RATE} requests/s (open loop, PNG in, top-3 out)",
            "value": p50,
            "unit": "ms",
            "reference": f"stdlib http.server + eager torch: {ref_p50:.2f} ms",
            "ratio": round(ref_p50 / p50, 2) if p50 else None,
            "target": "< 5 ms",
            "ok": p50 is not None and p50 < 5 and not ours["open"]["errors"],
            "note": f"layerlab {lat(ours)}, {ours['open']['ok']} ok, errors {ours['open']['errors'] or 'none'}; "
            f"reference {lat(ref)}",
        },
        {
            "name": f"signnet serve-model: throughput, closed loop, {CLIENTS} clients",
            "value": tput,
            "unit": "requests/s",
            "reference": f"stdlib http.server + eager torch: {ref_tput:,.0f} requests/s",
            "ratio": round(tput / ref_tput, 2) if ref_tput else None,
            "target": ">= 2x",
            "ok": bool(ref_tput) and tput / ref_tput >= 2,
            "note": f"engine {info.get('engine')} (parity {info.get('parity')}); batching: max batch "
            f"{batching.get('max_batch')}, wait {batching.get('max_wait_ms')} ms from the curve [{curve}]; "
            f"p50 under load {ours['closed']['latency_ms']['p50']:.1f} ms vs {ref['closed']['latency_ms']['p50']:.1f} ms",
        },
    ]


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--baseline":
        baseline_server(sys.argv[2], int(sys.argv[3]))
    else:
        for row in run():
            print(json.dumps(row))
