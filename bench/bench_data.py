"""Data benchmarks: importing the sign-language folder cold (no cache) and reloading it cached;
training on the memory-mapped cache against in-memory tensors; the peak memory of importing and
training one epoch on a folder larger than memory.

Run alone with ``python -m bench.bench_data``; ``bench/run_all.py`` collects ``run()``.
``LAYERLAB_BENCH_QUICK=1`` runs the big-folder check at 1/16 of its size (float32 256 MiB, not 4 GiB).
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

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits" / "Dataset"
REPEATS = 3
QUICK = os.environ.get("LAYERLAB_BENCH_QUICK") == "1"
BIG_UINT8_MIB = 64 if QUICK else 1024  # the big folder's pixels as uint8; as float32 4x this
SIDE = 128  # its images: random 3x128x128 PNGs (48 KiB of pixels each)


def _median_seconds(action, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run() -> list[dict]:
    """Cold import (images/s) against a one-thread decode, and cached reload against the cold import."""
    if not FOLDER.is_dir():
        return [
            {
                "name": "sign-language import",
                "value": None,
                "unit": "",
                "reference": "",
                "ratio": None,
                "target": "",
                "ok": None,
                "note": f"skipped: {FOLDER} not found",
            },
            big_folder_memory(),
        ]
    from layerlab.data.config import DataConfig, SplitConfig
    from layerlab.data.decode import DEFAULT_WORKERS, decode_many
    from layerlab.data.prepare import prepare_data
    from layerlab.data.sources.imagefolder import list_imagefolder

    cfg = DataConfig(source="imagefolder", path=str(FOLDER), split=SplitConfig(method="ordered"))
    listing = list_imagefolder(cfg.path)
    paths = [listing.root / rel for rel, *_ in listing.files]
    count = len(paths)

    with tempfile.TemporaryDirectory() as scratch:
        runs = iter(range(REPEATS))

        def cold() -> None:
            prepare_data(cfg, seed=0, cache_dir=Path(scratch) / f"cold-{next(runs)}")

        cold_s = _median_seconds(cold)
        warm_dir = Path(scratch) / "warm"
        prepare_data(cfg, seed=0, cache_dir=warm_dir)
        cached_s = _median_seconds(lambda: prepare_data(cfg, seed=0, cache_dir=warm_dir))

    one_thread_s = _median_seconds(lambda: decode_many(paths, (64, 64), 1, workers=1))
    pool_s = _median_seconds(lambda: decode_many(paths, (64, 64), 1, workers=DEFAULT_WORKERS))
    rows = [
        {
            "name": f"sign-language import, cold ({count} photos to 1x64x64, split, normalized)",
            "value": count / cold_s,
            "unit": "images/s",
            "reference": f"decode only, one thread: {count / one_thread_s:,.0f} images/s",
            "ratio": one_thread_s / cold_s,
            "target": ">= 1,000 images/s",
            "ok": count / cold_s >= 1000,
        },
        {
            "name": f"decode with a {DEFAULT_WORKERS}-thread pool (small JPEGs; import picks one thread)",
            "value": count / pool_s,
            "unit": "images/s",
            "reference": "decode only, one thread",
            "ratio": one_thread_s / pool_s,
            "target": "informative",
            "ok": None,
        },
        {
            "name": "sign-language reload from cache",
            "value": cached_s,
            "unit": "s",
            "reference": f"cold import: {cold_s:.2f} s",
            "ratio": cold_s / cached_s,
            "target": "< 1 s",
            "ok": cached_s < 1.0,
        },
    ]
    return [*rows, view_throughput(), big_folder_memory()]


SIGN_TRAINING = {
    "seed": 0,
    "data": {
        "source": "imagefolder",
        "path": str(FOLDER),
        "size": [64, 64],
        "channels": 1,
        "split": {"method": "ordered", "val": 0.15, "test": 0.15},
        "augment": {"shift": 4, "rotate": 10, "brightness": 0.2, "noise": 0.05},
        "limit": 600 if QUICK else None,
    },
    "model": {"preset": "signnet"},
    "train": {"epochs": 3, "batch_size": 32, "lr": 0.003, "checkpoint_every": 100, "num_threads": 2},
}


def _epoch_seconds(cache_dir: Path, in_memory: bool) -> float:
    """Best epoch time (train + validation, epoch 1 excluded) of the sign-language training."""
    from layerlab.train import adapters
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import train_experiment

    original = adapters.prepare_data

    def whole_tensors(*args, **kwargs):  # the in-memory path: each split one float32 tensor
        data = original(*args, **kwargs)
        for name in ("train_x", "val_x", "test_x"):
            setattr(data, name, getattr(data, name).materialize())
        return data

    if in_memory:
        adapters.prepare_data = whole_tensors
    try:
        with tempfile.TemporaryDirectory() as tmp:
            run = Path(tmp) / "run"
            train_experiment(experiment_from_mapping(SIGN_TRAINING), run, device="cpu", cache_dir=cache_dir)
            rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    finally:
        adapters.prepare_data = original
    return min(r["seconds"] for r in rows[1:])


def view_throughput() -> dict:
    """Training on the memory-mapped cache (batches read, converted, normalized on the fly) against
    the same training on whole float32 tensors in memory (the path before), interleaved."""
    with tempfile.TemporaryDirectory() as scratch:
        cache = Path(scratch) / "cache"
        _epoch_seconds(cache, in_memory=False)  # imports once; both sides then read the cache
        views, tensors = [], []
        for _ in range(2 if QUICK else REPEATS):
            tensors.append(_epoch_seconds(cache, in_memory=True))
            views.append(_epoch_seconds(cache, in_memory=False))
    ratio = min(tensors) / min(views)
    return {
        "name": "signnet on sign-language: memory-mapped cache (batches decoded on the fly) / in-memory tensors",
        "value": min(views),
        "unit": "s/epoch",
        "reference": f"in-memory float32 tensors {min(tensors):.3f} s/epoch",
        "ratio": ratio,
        "target": ">= 0.9",
        "ok": ratio >= 0.9,
    }


BIG_CHILD = r"""
import json, sys
from pathlib import Path
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

folder, cache, run, side = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = experiment_from_mapping({
    "data": {"source": "imagefolder", "path": folder, "size": [side, side], "channels": 3,
             "augment": {"hflip": True}},
    "model": {"layers": [{"kind": "avgpool2d", "kernel": 16}, {"kind": "flatten"},
                         {"kind": "linear", "out": "classes"}]},
    "train": {"epochs": 1, "batch_size": 32, "num_threads": 1},
})
train_experiment(cfg, Path(run), device="cpu", cache_dir=Path(cache))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"maxrss_kib": int(hwm.split()[1])}))
"""


def _noise_folder(root: Path, images: int, seed: int) -> None:
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for n in range(images):
        folder = root / ("a" if n % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)).save(
            folder / f"{n}.png", compress_level=0
        )


def _peak_mib(folder: Path, scratch: Path, name: str) -> tuple[float, float]:
    env = {**os.environ, "LAYERLAB_HOME": str(scratch / "home"), "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            BIG_CHILD,
            str(folder),
            str(scratch / f"c-{name}"),
            str(scratch / f"r-{name}"),
            str(SIDE),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024, time.perf_counter() - start


def big_folder_memory() -> dict:
    """Peak resident memory of import + one epoch on a folder whose float32 tensors are 4x 1 GiB."""
    count = -(-BIG_UINT8_MIB * 1024 * 1024 // (3 * SIDE * SIDE))
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        _noise_folder(scratch / "small", 160, seed=1)
        baseline, _ = _peak_mib(scratch / "small", scratch, "small")
        _noise_folder(scratch / "big", count, seed=0)
        peak, seconds = _peak_mib(scratch / "big", scratch, "big")
    floats = 4 * BIG_UINT8_MIB
    return {
        "name": f"peak memory, import + 1 epoch of {count:,} 3x{SIDE}x{SIDE} PNGs (float32 {floats:,} MiB, "
        f"uint8 {BIG_UINT8_MIB:,} MiB)",
        "value": peak,
        "unit": "MiB",
        "reference": f"the same run on 160 images: {baseline:,.0f} MiB (big run {seconds:.0f} s)",
        "ratio": peak / baseline,  # 1: the folder's size added nothing to the peak
        "target": "< 1024 MiB",
        "ok": peak < 1024,
    }


if __name__ == "__main__":
    for row in run():
        print(row)
