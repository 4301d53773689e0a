"""The micro-batching settings of a model on this machine, chosen from a measured latency/throughput curve.

The engine is timed at batch sizes 1, 2, 4 ... 32 (best of three rounds' median call times); the chosen maximum
batch is the smallest whose items/s comes within ``THROUGHPUT_SLACK`` of the best one among the
batches whose latency fits the budget: on a small CPU batching often buys nothing (the same items/s
at 1 and 8) and then the server does not batch. The wait is a fraction of the single-item latency.
The curve and the choice are cached per model content and machine (a JSON file beside the model).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

BATCHES = (1, 2, 4, 8, 16, 32)
LATENCY_BUDGET_MS = 4.0  # one batch's compute at most (the serving p50 target is 5 ms)
THROUGHPUT_SLACK = 0.10  # a larger batch must beat the smaller ones by more than this to be chosen
WAIT_FRACTION = 0.5  # max wait = this x the single-item latency (when batching at all)
MIN_SECONDS = 0.09  # timing per batch size, over all rounds (each round at least MIN_CALLS calls)
MIN_CALLS = 3
ROUNDS = 3
CURVE_VERSION = 2


def machine_key(threads: int) -> dict:
    """What the curve depends on besides the model: the machine, the runtime and the threads."""
    try:
        import onnxruntime

        runtime = onnxruntime.__version__
    except ImportError:  # pragma: no cover - a dependency
        runtime = None
    return {
        "node": platform.node(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "onnxruntime": runtime,
        "threads": int(threads),
        "version": CURVE_VERSION,
    }


def measure_curve(
    run: Callable[[np.ndarray], np.ndarray],
    input_shape: Sequence[int],
    *,
    batches: Sequence[int] = BATCHES,
    min_seconds: float = MIN_SECONDS,
    rounds: int = ROUNDS,
) -> list[dict]:
    """``[{"batch", "latency_ms", "items_per_s"}]``: per batch size, the best of ``rounds`` medians.

    The rounds go over every batch size in turn, so a burst of load from elsewhere on a shared
    machine spoils one round of some sizes, not the whole measure of one size.
    """
    rng = np.random.default_rng(0)
    inputs = {b: rng.standard_normal((b, *input_shape), dtype=np.float32) for b in batches}
    for x in inputs.values():
        run(x)  # warm-up: first calls allocate
    best = dict.fromkeys(batches, float("inf"))
    for _ in range(max(1, rounds)):
        for batch, x in inputs.items():
            times = []
            started = time.perf_counter()
            while len(times) < MIN_CALLS or time.perf_counter() - started < min_seconds / max(1, rounds):
                t0 = time.perf_counter()
                run(x)
                times.append(time.perf_counter() - t0)
            best[batch] = min(best[batch], float(np.median(times)))
    return [
        {
            "batch": int(batch),
            "latency_ms": round(median * 1000, 4),
            "items_per_s": round(batch / median, 1) if median > 0 else float("inf"),
        }
        for batch, median in best.items()
    ]


def choose_batching(
    curve: list[dict],
    *,
    latency_budget_ms: float = LATENCY_BUDGET_MS,
    slack: float = THROUGHPUT_SLACK,
    wait_fraction: float = WAIT_FRACTION,
) -> dict:
    """``{"max_batch", "max_wait_ms", "why"}`` from a measured curve (see the module's docstring)."""
    rows = sorted(curve, key=lambda r: r["batch"])
    fitting = [r for r in rows if r["latency_ms"] <= latency_budget_ms] or rows[:1]
    best = max(r["items_per_s"] for r in fitting)
    chosen = next(r for r in fitting if r["items_per_s"] >= (1 - slack) * best)
    single = rows[0]["latency_ms"] if rows else 0.0
    wait_ms = round(wait_fraction * single, 4) if chosen["batch"] > 1 else 0.0
    best_row = next(r for r in fitting if r["items_per_s"] == best)
    why = (
        f"batch {chosen['batch']}: {chosen['items_per_s']:,.0f} items/s at {chosen['latency_ms']:.3g} ms, "
        f"within {slack:.0%} of the best {best:,.0f} items/s (batch {best_row['batch']}) "
        f"among batches under {latency_budget_ms:g} ms"
    )
    return {"max_batch": int(chosen["batch"]), "max_wait_ms": wait_ms, "why": why}


def batching_for(
    run: Callable[[np.ndarray], np.ndarray],
    input_shape: Sequence[int],
    *,
    key: str,
    threads: int = 1,
    cache_file: Path | None = None,
    latency_budget_ms: float = LATENCY_BUDGET_MS,
    batches: Sequence[int] = BATCHES,
) -> dict:
    """The curve and the choice for this model (``key``: its content hash) on this machine, cached.

    Returns ``{"curve", "max_batch", "max_wait_ms", "why", "cached", "measured_at"}``; the cache file
    is reused only when the model key, the machine key and the budget match.
    """
    machine = machine_key(threads)
    if cache_file is not None and cache_file.is_file():
        try:
            stored = json.loads(cache_file.read_text(encoding="utf-8"))
            if (
                stored.get("key") == key
                and stored.get("machine") == machine
                and stored.get("latency_budget_ms") == latency_budget_ms
            ):
                return {**stored["result"], "cached": True}
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a damaged cache is measured again
    curve = measure_curve(run, input_shape, batches=batches)
    choice = choose_batching(curve, latency_budget_ms=latency_budget_ms)
    result = {"curve": curve, **choice, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    log.info(
        "batching curve %s; chose %s",
        ", ".join(f"b{r['batch']}: {r['latency_ms']:.3g} ms {r['items_per_s']:,.0f}/s" for r in curve),
        choice["why"],
    )
    if cache_file is not None:
        stored = {"key": key, "machine": machine, "latency_budget_ms": latency_budget_ms, "result": result}
        try:
            partial = cache_file.with_name(f".{cache_file.name}.{os.getpid()}.part")
            partial.write_text(json.dumps(stored, indent=1), encoding="utf-8")
            os.replace(partial, cache_file)
        except OSError:
            log.warning("cannot cache the batching curve in %s", cache_file.name)
    return {**result, "cached": False}
