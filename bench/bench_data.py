"""Data benchmarks: importing the sign-language folder cold (no cache) and reloading it cached.

Run alone with ``python -m bench.bench_data``; ``bench/run_all.py`` collects ``run()``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits" / "Dataset"
REPEATS = 3


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
            }
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
    return [
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


if __name__ == "__main__":
    for row in run():
        print(row)
