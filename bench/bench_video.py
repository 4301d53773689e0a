"""Counting repetitions: the frames report's cost beside one training epoch, and the CNN -> LSTM's test
accuracy beside the peak-count baseline's, on a fixed seed.

The report (``inference.frames_report``: the baseline chosen on train over every conv / linear layer of
the per-frame body, with the trained and the untrained weights, its trace plot) is what a clip-counting
run computes when it ends; its cost is compared with the mean CPU time of one training epoch of the same
run (``metrics.jsonl`` seconds), so "the report costs N epochs". The accuracies are measured, not
targeted: which counter wins depends on how long the LSTM trained (docs/video.md, Results).

Full: ``examples/video-count-cnn-lstm.yaml`` as written (4 counts x 150 clips of 20 frames of 24x24,
15 epochs, seed 0; about 90 CPU seconds of training). ``LAYERLAB_BENCH_QUICK=1``: 30 clips per count and
3 epochs (the accuracies are then near chance: the row measures the cost). One CPU thread.
Usage: ``python -m bench.bench_video``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import yaml

QUICK = os.environ.get("LAYERLAB_BENCH_QUICK") == "1"
ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "video-count-cnn-lstm.yaml"


def _config() -> dict:
    config = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    config["seed"] = 0
    if QUICK:
        config["data"]["video"]["clips_per_class"] = 30
        config["train"]["epochs"] = 3
    return config


def _epoch_seconds(run_dir: Path) -> float:
    """Mean seconds of one training epoch, from the run's metrics."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    return sum(float(row["seconds"]) for row in rows) / len(rows)


def run() -> list[dict]:
    import torch

    from layerlab.inference import frames_report
    from layerlab.train.config import experiment_from_mapping
    from layerlab.train.runner import Trainer

    torch.set_num_threads(1)  # the machine is shared; one thread, as the other benches
    config = _config()
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(experiment_from_mapping(config), Path(tmp) / "run", device="cpu")
        summary = trainer.run()
        epoch = _epoch_seconds(trainer.run_dir)
        start, cpu = time.perf_counter(), time.process_time()
        report, traces = frames_report.compare(
            trainer.model,
            trainer.network,
            trainer.classes,
            {s: trainer.splits[s] for s in ("train", "test")},
            seed=trainer.cfg.seed,
            test_accuracy=summary.get("test_accuracy"),
        )
        frames_report.write_report(trainer.run_dir, report, traces)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    video = config["data"]["video"]
    size = (
        f"{video['max_count']} counts x {video['clips_per_class']} clips, {config['train']['epochs']} epochs"
    )
    load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    chosen, untrained = report["baseline"], report["untrained_baseline"]
    network = report["network_test_accuracy"]
    return [
        {
            "name": "frames report at a run's end (trained + untrained baseline, trace plot)",
            "value": round(wall, 3),
            "unit": "s",
            "reference": f"one training epoch, {epoch:.2f} s",
            "ratio": round(wall / max(epoch, 1e-9), 2),
            "target": "",
            "ok": None,
            "cpu_seconds": round(cpu, 3),
            "note": f"{size}; {report['clips']['train']['used']} train + {report['clips']['test']['used']} test "
            f"clips, {len(report['candidates'])} candidate layers; {cpu:.2f} CPU s; {load}",
        },
        {
            "name": "peak-count baseline test accuracy (trained net, chosen on train), seed 0",
            "value": round(chosen["test_accuracy"], 4),
            "unit": "",
            "reference": f"CNN -> LSTM test accuracy {network:.4f}",
            "ratio": round(chosen["test_accuracy"] / network, 3) if network else None,
            "target": "",
            "ok": None,
            "note": f"{chosen['layer']} channel {chosen['channel']}, band {chosen['prominence']}, "
            f"{'turns' if chosen['turns'] else 'peaks'}; untrained net {untrained['test_accuracy']:.4f} "
            f"({untrained['layer']}); chance {report['chance']:.2f}; {size}",
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
