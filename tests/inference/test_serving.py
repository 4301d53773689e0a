"""Serving: the ONNX Runtime engine (parity, eager fallback), micro-batching, the batching choice, the
standalone server's endpoints and the load-test command."""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import numpy as np
import pytest
import torch
from PIL import Image

from layerlab.core.errors import ExportError
from layerlab.data.limits import DecodeLimits
from layerlab.inference import calibrate, onnx_engine
from layerlab.inference.batching import MicroBatcher
from layerlab.inference.onnx_engine import load_engine
from layerlab.inference.server import Predictor, ServingApp, multipart_files
from layerlab.inference.trained import load_trained
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment


@pytest.fixture(scope="module")
def vector_run(tmp_path_factory):
    torch.set_num_threads(1)
    run_dir = tmp_path_factory.mktemp("vector") / "run"
    cfg = experiment_from_mapping(
        {"model": {"preset": "mlp", "options": {"hidden": [8]}}, "train": {"epochs": 1, "batch_size": 64}}
    )
    train_experiment(cfg, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def image_run(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("image")
    rng = np.random.default_rng(0)
    for label in ("a", "b"):
        (root / "data" / label).mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 255, (8, 8), dtype=np.uint8)
            Image.fromarray(pixels).save(root / "data" / label / f"{i}.png")
    cfg = experiment_from_mapping(
        {
            "data": {"source": "imagefolder", "path": str(root / "data"), "size": [8, 8], "channels": 1},
            "model": {"preset": "mlp", "options": {"hidden": [4]}},
            "train": {"epochs": 1, "batch_size": 8},
        }
    )
    train_experiment(cfg, root / "run", cache_dir=root / "cache")
    return root / "run"


def png_bytes(size=(8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((size[1], size[0]), 128, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------------- the engine


def test_onnx_engine_matches_eager_at_batch_1_and_8_from_one_file(vector_run, tmp_path):
    engine = load_engine(vector_run, cache_dir=tmp_path)
    assert engine.name == "onnxruntime" and engine.reason is None
    assert set(engine.parity) == {"batch_1", "batch_8"}
    assert all(d <= 1e-5 for d in engine.parity.values())
    assert [p.name for p in tmp_path.iterdir()] == [engine.model_file.name]  # no .onnx.data beside it
    trained = load_trained(vector_run)
    x = np.random.default_rng(1).standard_normal((8, 2), dtype=np.float32)
    with torch.no_grad():
        eager = trained.model(torch.from_numpy(x)).numpy()
    assert np.abs(engine.run(x) - eager).max() <= 1e-5
    # the cached file is reused (not exported again) and still checked
    again = load_engine(vector_run, cache_dir=tmp_path)
    assert again.model_file == engine.model_file and again.parity


def test_engine_falls_back_to_eager_when_export_is_impossible(vector_run, tmp_path, monkeypatch):
    def refuse(trained, out):
        raise ExportError(f"onnx export impossible (legacy: unsupported op in '{out}')")

    monkeypatch.setattr(onnx_engine, "export_serving_onnx", refuse)
    engine = load_engine(vector_run, cache_dir=tmp_path)
    assert engine.name == "eager"
    assert "onnx export impossible" in engine.reason and str(tmp_path) not in engine.reason
    assert engine.describe()["engine_reason"] == engine.reason
    assert engine.run(np.zeros((3, 2), np.float32)).shape == (3, 3)
    app = ServingApp(predictor=Predictor(engine, {"max_batch": 1, "max_wait_ms": 0, "why": "", "curve": []}))
    status, answer = call(app, "POST", "/predict", b'{"inputs": [[0, 0]]}', "application/json")
    assert status == 200 and answer["engine"] == "eager" and answer["engine_reason"] == engine.reason


def test_engine_falls_back_to_eager_when_onnx_differs(vector_run, tmp_path, monkeypatch):
    real = onnx_engine.session_runner
    monkeypatch.setattr(onnx_engine, "session_runner", lambda s: lambda x: real(s)(x) + 1e-3)
    engine = load_engine(vector_run, cache_dir=tmp_path)
    assert engine.name == "eager" and "differs from the eager model" in engine.reason


def test_rank_gives_top_k_best_first():
    results = onnx_engine.rank(np.array([[0.0, 2.0, 1.0]]), ["a", "b", "c"], 2, probabilities=True)
    assert [t["class"] for t in results[0]["top"]] == ["b", "c"]
    assert abs(sum(results[0]["probabilities"]) - 1) < 1e-5


# ---------------------------------------------------------------- micro-batching


def test_micro_batcher_groups_concurrent_requests():
    release = threading.Event()
    seen = []

    def run(x):
        seen.append(len(x))
        if len(seen) == 1:
            release.wait(5)  # the first batch holds the thread while the others queue up
        return x * 2

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.0)
    first = batcher.submit(np.ones((1, 2), np.float32))
    while not seen:
        time.sleep(0.001)
    futures = [batcher.submit(np.full((1, 2), i, np.float32)) for i in range(6)]
    release.set()
    assert first.result(5).tolist() == [[2, 2]]
    assert [f.result(5)[0, 0] for f in futures] == [0, 2, 4, 6, 8, 10]  # each got its own rows
    assert seen == [1, 4, 2]
    assert batcher.stats()["batches"] == 3
    batcher.close()


def test_micro_batcher_keeps_requests_whole_and_reports_errors():
    seen = []
    release = threading.Event()

    def run(x):
        seen.append(len(x))
        if len(seen) == 1:
            release.wait(5)
        if len(x) == 5:
            raise ValueError("boom")
        return x

    batcher = MicroBatcher(run, max_batch=4, max_wait_s=0.0)
    batcher.submit(np.ones((1, 1), np.float32))
    while not seen:
        time.sleep(0.001)
    small = batcher.submit(np.ones((3, 1), np.float32))
    big = batcher.submit(np.ones((5, 1), np.float32))  # above max_batch: alone, not split
    release.set()
    assert small.result(5).shape == (3, 1)
    with pytest.raises(ValueError):
        big.result(5)
    assert seen == [1, 3, 5]
    batcher.close()


# ---------------------------------------------------------------- the batching choice


def curve(*rows):
    return [{"batch": b, "latency_ms": b / ips * 1000, "items_per_s": ips} for b, ips in rows]


def test_batching_is_off_when_the_curve_is_flat():
    flat = curve((1, 1000), (2, 1010), (4, 1020), (8, 1000), (16, 900), (32, 700))
    choice = calibrate.choose_batching(flat, latency_budget_ms=100)
    assert choice["max_batch"] == 1 and choice["max_wait_ms"] == 0


def test_batching_picks_the_batch_that_pays_within_the_latency_budget():
    rising = curve((1, 1000), (2, 1800), (4, 3000), (8, 4000), (16, 4200), (32, 4300))
    choice = calibrate.choose_batching(rising, latency_budget_ms=2.5)  # 16 (3.8 ms) and 32 are too slow
    assert choice["max_batch"] == 8
    assert choice["max_wait_ms"] == pytest.approx(0.5 * 1.0)  # half the single-item latency


def test_batching_curve_is_measured_once_per_model_and_machine(tmp_path):
    calls = []

    def run(x):
        calls.append(len(x))
        return x

    cache = tmp_path / "b.json"
    first = calibrate.batching_for(run, [2], key="m1", cache_file=cache, batches=(1, 2))
    assert not first["cached"] and [r["batch"] for r in first["curve"]] == [1, 2]
    count = len(calls)
    second = calibrate.batching_for(run, [2], key="m1", cache_file=cache, batches=(1, 2))
    assert second["cached"] and len(calls) == count and second["max_batch"] == first["max_batch"]
    calibrate.batching_for(run, [2], key="m2", cache_file=cache, batches=(1, 2))  # another model
    assert len(calls) > count


# ---------------------------------------------------------------- the server


def call(app, method, path, body=b"", content_type="", query=""):
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "CONTENT_TYPE": content_type,
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    answer = {}

    def start_response(status, headers):
        answer["status"] = int(status.split()[0])

    data = b"".join(app(environ, start_response))
    return answer["status"], json.loads(data)


def ready_app(run, **kwargs) -> ServingApp:
    engine = load_engine(run)
    batching = {"max_batch": 4, "max_wait_ms": 0.5, "why": "test", "curve": []}
    return ServingApp(predictor=Predictor(engine, batching, limits=kwargs.pop("limits", None)), **kwargs)


def test_health_ready_and_openapi(vector_run):
    loading = ServingApp(lambda: time.sleep(10))
    assert call(loading, "GET", "/healthz")[0] == 200
    status, body = call(loading, "GET", "/readyz")
    assert status == 503 and set(body) == {"error", "detail"}
    app = ready_app(vector_run)
    status, body = call(app, "GET", "/readyz")
    assert status == 200 and body["engine"] == "onnxruntime" and body["batching"]["max_batch"] == 4
    assert set(body["parity"]) == {"batch_1", "batch_8"}
    status, doc = call(app, "GET", "/openapi.json")
    assert status == 200 and "/predict" in doc["paths"] and doc["openapi"].startswith("3.")
    assert call(app, "GET", "/nowhere")[0] == 404
    assert call(app, "GET", "/predict")[0] == 405


def test_predict_arrays_and_bad_input(vector_run):
    app = ready_app(vector_run)
    body = json.dumps({"inputs": [[0.1, 0.2], [-0.5, 0.3]], "top_k": 2}).encode()
    status, answer = call(app, "POST", "/predict", body, "application/json")
    assert status == 200, answer
    assert answer["engine"] == "onnxruntime" and len(answer["predictions"]) == 2
    assert len(answer["predictions"][0]["top"]) == 2
    for bad in (b"{not json", json.dumps({"inputs": [[1, 2, 3]]}).encode(), b"{}", b'{"inputs": [["a"]]}'):
        status, answer = call(app, "POST", "/predict", bad, "application/json")
        assert status == 400 and set(answer) == {"error", "detail"}, answer
    assert call(app, "POST", "/predict", b"x", "text/plain")[0] == 415
    assert call(app, "POST", "/predict", png_bytes(), "image/png")[0] == 400  # a vector model
    status, answer = call(app, "POST", "/predict", b'{"inputs": [[0, 0]]}', "application/json", "top_k=x")
    assert status == 400


def test_predict_images_raw_and_multipart_with_limits(image_run):
    app = ready_app(image_run, limits=DecodeLimits(max_image_pixels=200))
    status, answer = call(app, "POST", "/predict", png_bytes(), "image/png", "top_k=1")
    assert status == 200, answer
    assert len(answer["predictions"]) == 1 and len(answer["predictions"][0]["top"]) == 1
    boundary = "XyZ"
    form = b""
    for name in ("one.png", "two.png"):
        form += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
                "Content-Type: image/png\r\n\r\n"
            ).encode()
            + png_bytes()
            + b"\r\n"
        )
    form += f"--{boundary}--\r\n".encode()
    ctype = f"multipart/form-data; boundary={boundary}"
    assert [n for n, _ in multipart_files(ctype, form)] == ["one.png", "two.png"]
    status, answer = call(app, "POST", "/predict", form, ctype)
    assert status == 200, answer
    assert [p["file"] for p in answer["predictions"]] == ["one.png", "two.png"]
    status, answer = call(app, "POST", "/predict", png_bytes((20, 20)), "image/png")  # 400 > 200 pixels
    assert status == 413 and "pixels" in answer["detail"]
    status, answer = call(app, "POST", "/predict", b"not an image", "image/png")
    assert status == 400 and "not an image" in answer["detail"]
    small = ServingApp(predictor=app.predictor, max_body_bytes=10)
    assert call(small, "POST", "/predict", png_bytes(), "image/png")[0] == 413


# ---------------------------------------------------------------- the load test


class QuietHandler(WSGIRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass


class ThreadingWSGIServer(WSGIServer):
    daemon_threads = True

    def process_request(self, request, client_address):
        threading.Thread(target=self._handle, args=(request, client_address), daemon=True).start()

    def _handle(self, request, client_address):
        try:
            self.finish_request(request, client_address)
        finally:
            self.shutdown_request(request)


def test_loadtest_command_prints_throughput_and_percentiles(vector_run, tmp_path, capsys):
    from layerlab.cli.main import main

    app = ready_app(vector_run)
    server = make_server("127.0.0.1", 0, app, server_class=ThreadingWSGIServer, handler_class=QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    body = tmp_path / "body.json"
    body.write_text(json.dumps({"inputs": [[0.1, 0.2]]}))
    url = f"http://127.0.0.1:{server.server_port}/predict"
    try:
        code = main(
            [
                "loadtest",
                url,
                "--rate",
                "40",
                "--duration",
                "0.5",
                "--concurrency",
                "2",
                "--input",
                str(body),
                "--json",
            ]
        )
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert code == 0, out
    assert "throughput:" in out and "p50" in out and "p99" in out
    result = json.loads(out.strip().splitlines()[-1])
    assert result["ok"] == result["requests"] == 20 and result["latency_ms"]["p50"] is not None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.e2e
def test_serve_model_command_serves_until_stopped(image_run):
    port = free_port()
    command = [sys.executable, "-m", "layerlab.cli.main", "serve-model", str(image_run), "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 60
        ready = None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
                    ready = json.load(response)
                    break
            except OSError:
                time.sleep(0.3)
        assert ready and ready["engine"] == "onnxruntime" and ready["batching"]["curve"], ready
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/predict", data=png_bytes(), headers={"Content-Type": "image/png"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            assert json.load(response)["predictions"][0]["top"]
    finally:
        process.terminate()
        process.wait(15)
    assert Path(image_run, "export", "serving").is_dir()
