"""A load generator for prediction endpoints: open loop at a fixed rate, or closed loop flat out.

Open loop (``rate > 0``): request ``i`` is due at ``start + i / rate``; each latency is counted from
that due time, so a server that falls behind shows its queueing (no coordinated omission). Closed
loop (``rate == 0``): ``concurrency`` clients send back to back. Each client keeps one HTTP/1.1
connection open. Standard library only.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from layerlab.core.errors import ConfigError, DataError

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".bmp": "image/bmp",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}


@dataclass
class Payload:
    body: bytes
    content_type: str


def payload_from_file(path: str | Path) -> Payload:
    """The request body for ``path``: an image as raw bytes, a .json file as is, a .npy as ``{"inputs"}``."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"input file '{path}' does not exist", where="--input")
    suffix = path.suffix.lower()
    if suffix in IMAGE_TYPES:
        return Payload(path.read_bytes(), IMAGE_TYPES[suffix])
    if suffix == ".json":
        return Payload(path.read_bytes(), "application/json")
    if suffix == ".npy":
        array = np.load(path, allow_pickle=False)
        return Payload(json.dumps({"inputs": array.tolist()}).encode(), "application/json")
    raise DataError(
        f"cannot send '{path.name}'", hint="give an image, a .json body or a .npy array", where="--input"
    )


def percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def load_test(
    url: str,
    payload: Payload,
    *,
    rate: float,
    duration: float,
    concurrency: int = 8,
    timeout: float = 30.0,
    warmup: int = 5,
) -> dict:
    """Send requests for ``duration`` seconds; returns counts, throughput and latency percentiles (ms).

    Args:
        url: the endpoint (``http://host:port/predict``).
        rate: requests per second (open loop), 0 for as fast as ``concurrency`` clients go.
        concurrency: client threads (each one connection).
        warmup: requests sent (and not counted) before the clock starts.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "") or not parts.hostname:
        raise ConfigError(f"cannot load-test '{url}'", hint="give an http://host:port/path URL", where="URL")
    if rate < 0 or duration <= 0 or concurrency < 1:
        raise ConfigError("--rate must be >= 0, --duration > 0 and --concurrency >= 1")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    headers = {"Content-Type": payload.content_type, "Connection": "keep-alive"}

    def connect():
        return http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)

    def send(conn) -> tuple[int, http.client.HTTPConnection]:
        try:
            conn.request("POST", target, body=payload.body, headers=headers)
            response = conn.getresponse()
            response.read()
            if response.getheader("Connection", "").lower() == "close":
                conn.close()
                conn = connect()
            return response.status, conn
        except (OSError, http.client.HTTPException):
            conn.close()
            return 0, connect()

    warm = connect()
    for _ in range(warmup):
        _, warm = send(warm)
    warm.close()

    lock = threading.Lock()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = iter(range(10**12))
    total = int(rate * duration) if rate > 0 else None
    start = time.perf_counter() + 0.05
    stop_at = start + duration

    def client() -> None:
        conn = connect()
        while True:
            with lock:
                index = next(counter)
            if total is not None:
                if index >= total:
                    break
                due = start + index / rate
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            else:
                due = time.perf_counter()
                if due >= stop_at:
                    break
            status, conn = send(conn)
            took = time.perf_counter() - due
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if status == 200:
                    latencies.append(took * 1000)
        conn.close()

    threads = [threading.Thread(target=client, daemon=True) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = max(time.perf_counter() - start, 1e-9)
    sent = sum(statuses.values())
    ok = statuses.get(200, 0)
    return {
        "url": url,
        "mode": "open loop" if rate > 0 else "closed loop",
        "rate": rate,
        "duration_s": round(elapsed, 3),
        "concurrency": concurrency,
        "requests": sent,
        "ok": ok,
        "errors": {str(k): v for k, v in sorted(statuses.items()) if k != 200},
        "throughput_rps": round(ok / elapsed, 1),
        "latency_ms": {
            name: (round(v, 3) if (v := percentile(latencies, q)) is not None else None)
            for name, q in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
    }


def summary_lines(result: dict) -> list[str]:
    """The report ``layerlab loadtest`` prints."""
    lat = result["latency_ms"]

    def ms(value):
        return "-" if value is None else f"{value:.2f} ms"

    errors = ", ".join(f"{k or 'no answer'}: {v}" for k, v in result["errors"].items()) or "none"
    return [
        f"{result['mode']}, {result['concurrency']} clients, {result['duration_s']:.1f} s"
        + (f", target {result['rate']:g} req/s" if result["rate"] else ""),
        f"requests: {result['requests']}  ok: {result['ok']}  errors: {errors}",
        f"throughput: {result['throughput_rps']:,.1f} req/s",
        f"latency: p50 {ms(lat['p50'])}  p90 {ms(lat['p90'])}  p99 {ms(lat['p99'])}  max {ms(lat['max'])}",
    ]
