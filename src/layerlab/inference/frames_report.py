"""The report of a clip-counting run: the CNN -> LSTM's test accuracy beside the peak-count baseline.

A run whose network has a ``timedistributed`` layer over clips ``(T, C, H, W)`` and whose classes are
repetition counts ("1".."K") writes, when it ends, ``frames.json`` and ``frames.png`` (names in
``core.runlayout``): the network's test accuracy, the peak-count baseline's (``inference.frames``) on
the same run's splits with the trained weights and with the same architecture freshly initialized,
which layer and channel the baseline chose, and a trace plot of a few test clips with their peaks.

Nothing is chosen on test: the layer (among the per-frame body's conv and linear layers), the channel,
the band and the counting mode are the most accurate on the train clips. The cost is capped: at most
``MAX_CLIPS`` clips of each split (a seeded sample, counted in the report). ``FramesReport`` writes it
when a run ends; ``report_for_run`` writes it for a finished run (``layerlab inspect RUN --baseline``).
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import ConfigError, LayerlabError
from layerlab.core.runlayout import FRAMES_REPORT, FRAMES_TRACES, SUMMARY
from layerlab.inference import frames
from layerlab.train.callbacks import Callback
from layerlab.train.checkpoint import write_atomic
from layerlab.train.tasks import CLASSIFICATION

logger = logging.getLogger(__name__)

MAX_CLIPS = 256  # clips of each split the baseline reads: its cost stays a few forward passes
TRACE_CLIPS = 4  # test clips drawn in frames.png
TIMEDISTRIBUTED = "timedistributed"
SAMPLE_STREAM = 104_729  # the capped sample's own stream of the run's seed


def asks_for_frames(config: Mapping | None) -> bool:
    """Whether a config (the mapping form) classifies clips with a ``timedistributed`` layer."""
    config = config or {}
    train = config.get("train") or {}
    task = train.get("task") if isinstance(train, Mapping) else None
    layers = (config.get("model") or {}).get("layers") if isinstance(config.get("model"), Mapping) else None
    return (task or CLASSIFICATION) == CLASSIFICATION and any(
        isinstance(layer, Mapping) and layer.get("kind") == TIMEDISTRIBUTED for layer in layers or ()
    )


def candidate_layers(model: torch.nn.Module) -> list[str]:
    """The per-frame body's conv and linear layers (dotted paths), in network order: what the baseline
    traces. A layer outside a ``timedistributed`` body gives no per-frame output."""
    from layerlab.nn.layers.sequence import TimeDistributed

    found: list[str] = []
    for name, module in model.named_modules():
        if isinstance(module, TimeDistributed):
            found += [
                f"{name}.{inner}"
                for inner, layer in module.named_modules()
                if inner and isinstance(layer, torch.nn.Conv2d | torch.nn.Linear)
            ]
    return found


def choose_baseline(model, clips: Mapping, labels: Mapping, classes: Sequence[str], layers: Sequence[str]):
    """The baseline of every candidate layer and the one most accurate on train (the first on a tie):
    ``(chosen BaselineResult, [every result])``."""
    results = frames.layers_baselines(model, clips, labels, layers, classes=classes)
    best = max(range(len(results)), key=lambda i: (results[i].train_accuracy, -i))
    return results[best], results


def capped_split(x, y, limit: int, seed: int) -> tuple[torch.Tensor, np.ndarray, int]:
    """At most ``limit`` clips of a split (a seeded sample in split order), on the CPU, and the split's size."""
    total = len(y)
    keep = np.arange(total)
    if total > limit:
        keep = np.sort(
            np.random.default_rng(seed * 1_000_003 + SAMPLE_STREAM).choice(total, limit, replace=False)
        )
    x = torch.as_tensor(x)
    x = x[torch.as_tensor(keep, device=x.device)].float().cpu()
    return x, np.asarray(torch.as_tensor(y).cpu())[keep], total


def untrained_twin(network: dict, seed: int) -> torch.nn.Module:
    """The run's architecture at a fresh initialization seeded by the run's seed (the global RNG is
    left as it was: a report must not change what runs after it)."""
    from layerlab.train import adapters

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return adapters.network_from_dict(network).eval()


def compare(model, network: dict, classes, splits: Mapping, *, seed: int, test_accuracy: float | None):
    """The report and the trace plot's clips: ``(report dict, traces dict)``.

    Args:
        model: the trained network (the best weights).
        network: its spec dict (for the untrained twin).
        classes: the class names, repetition counts ("1".."K").
        splits: ``{"train": (x, y), "test": (x, y)}``, x preprocessed clips, y class indices.
        seed: the run's seed (the capped sample and the untrained twin).
        test_accuracy: the network's own test accuracy (its summary's).
    """
    counts = frames.class_counts(classes)
    clips, labels, totals = {}, {}, {}
    for split in ("train", "test"):
        clips[split], labels[split], totals[split] = capped_split(*splits[split], MAX_CLIPS, seed)
    layers = candidate_layers(frames.network_of(model))
    if not layers:
        raise ConfigError("the network has no conv or linear layer inside a timedistributed body")
    chosen, every = choose_baseline(model, clips, labels, classes, layers)
    untrained, _ = choose_baseline(untrained_twin(network, seed), clips, labels, classes, layers)
    report = {
        "task": "frames",
        "network_test_accuracy": test_accuracy,
        "baseline": chosen.to_dict(),
        "untrained_baseline": untrained.to_dict(),
        "candidates": [
            {key: getattr(r, key) for key in ("layer", "channel", "train_accuracy", "test_accuracy")}
            for r in every
        ],
        "chance": 1.0 / len(counts),
        "clips": {s: {"used": len(labels[s]), "of": totals[s]} for s in ("train", "test")},
        "max_clips": MAX_CLIPS,
        "chosen_on": "train",
    }
    shown = slice(0, min(TRACE_CLIPS, len(labels["test"])))
    values = frames.frame_activations(model, clips["test"][shown], chosen.layer).numpy()[:, :, chosen.channel]
    traces = {"values": values, "truth": counts[labels["test"][shown]], "result": chosen}
    return report, traces


def traces_png(traces: dict) -> bytes:
    """PNG bytes: the chosen unit's trace over each shown test clip, its peaks marked, true and counted k."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    result, values = traces["result"], traces["values"]
    rows = max(1, len(values))
    figure = Figure(figsize=(6, 1.6 * rows + 0.4), dpi=80)
    for i, (trace, truth) in enumerate(zip(values, traces["truth"], strict=True)):
        axes = figure.add_subplot(rows, 1, i + 1)
        peaks = frames.trace_peaks(trace, result.prominence)
        counted = frames.count_peaks(trace, result.prominence, turns=result.turns)
        axes.plot(np.arange(len(trace)), trace, color="#3b7dd8", linewidth=1.5)
        axes.plot(peaks, trace[peaks], "v", color="#d84b3b", markersize=7)
        axes.set_title(f"test clip {i + 1}: true count {truth}, counted {counted}", fontsize=9)
        axes.set_ylabel("activation", fontsize=8)
    if figure.axes:
        figure.axes[-1].set_xlabel(f"frame ({result.layer} channel {result.channel})", fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def write_report(run_dir: str | Path, report: dict, traces: dict) -> dict:
    """Write ``frames.png`` then ``frames.json`` into ``run_dir`` (the JSON last: it says the report is whole)."""
    run_dir = Path(run_dir)
    write_atomic(run_dir / FRAMES_TRACES, traces_png(traces))
    write_atomic(run_dir / FRAMES_REPORT, json.dumps(report, indent=2).encode())
    return report


def read_report(run_dir: str | Path) -> dict | None:
    """The stored report of a run, or None when it has none (or it cannot be read)."""
    try:
        report = json.loads((Path(run_dir) / FRAMES_REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


class FramesReport(Callback):
    """Writes the report of a clip-counting run when it ends (the trainer's best weights, its splits)."""

    def on_run_end(self, trainer, summary: dict) -> None:
        task = getattr(trainer, "task", None)
        if task is None or not task.classifies or summary.get("status") not in ("completed", "early_stopped"):
            return
        if len(getattr(trainer, "input_shape", ())) != 4 or len(trainer.splits["test"][1]) == 0:
            return
        try:
            report, traces = compare(
                trainer.model,
                trainer.network,
                trainer.classes,
                {s: trainer.splits[s] for s in ("train", "test")},
                seed=trainer.cfg.seed,
                test_accuracy=summary.get("test_accuracy"),
            )
        except LayerlabError as exc:  # classes that are not counts: the run stands, without a report
            logger.warning("no peak-count baseline for this run: %s", exc.one_line())
            return
        if trainer.before_write("frames"):
            write_report(trainer.run_dir, report, traces)


def report_for_run(run_dir: str | Path, *, device: str = "cpu", cache_dir: Path | None = None) -> dict:
    """Compute and write the report of a finished clip-counting run from its files (best checkpoint).

    Args:
        run_dir: the run directory.
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: where decoded datasets are cached.
    """
    from layerlab.inference.trained import load_trained
    from layerlab.train import adapters
    from layerlab.train.config import experiment_from_mapping

    run_dir = Path(run_dir)
    trained = load_trained(run_dir, device=device)
    if not asks_for_frames(trained.config) or len(trained.model.input_shape) != 4:
        raise ConfigError(
            "this run does not classify clips with a timedistributed layer",
            hint="the peak-count baseline is for clip-counting runs (docs/video.md)",
            where=str(run_dir),
        )
    cfg = experiment_from_mapping(trained.config)
    data = adapters.prepare_data(cfg.data, seed=cfg.seed, cache_dir=cache_dir)
    report, traces = compare(
        trained,
        trained.network,
        trained.classes,
        {"train": (data.train_x, data.train_y), "test": (data.test_x, data.test_y)},
        seed=cfg.seed,
        test_accuracy=_summary_test_accuracy(run_dir),
    )
    return write_report(run_dir, report, traces)


def _summary_test_accuracy(run_dir: Path) -> float | None:
    try:
        value = json.loads((run_dir / SUMMARY).read_text(encoding="utf-8")).get("test_accuracy")
    except (OSError, ValueError, AttributeError):
        return None
    return float(value) if isinstance(value, int | float) else None


def report_callbacks(cfg) -> list[Callback]:
    """The callbacks a training of ``cfg`` (an ExperimentConfig) adds: the frames report of a run that
    classifies clips with a timedistributed layer, nothing for the others."""
    return [FramesReport()] if cfg is not None and asks_for_frames(cfg.to_dict()) else []


def summary_lines(report: dict) -> list[str]:
    """The report for people: the network's and the baselines' test accuracy, what was chosen."""

    def pct(value):
        return "-" if value is None else f"{100 * value:.1f}%"

    chosen, untrained, clips = report["baseline"], report["untrained_baseline"], report["clips"]
    mode = "turns" if chosen["turns"] else "peaks"
    return [
        f"counting   network test {pct(report['network_test_accuracy'])}  peak-count baseline test "
        f"{pct(chosen['test_accuracy'])} (untrained net {pct(untrained['test_accuracy'])}, chance "
        f"{pct(report['chance'])})",
        f"baseline   {chosen['layer']} channel {chosen['channel']}, band {chosen['prominence']}, {mode}; "
        f"chosen on {clips['train']['used']} of {clips['train']['of']} train clips, tested on "
        f"{clips['test']['used']} of {clips['test']['of']}",
    ]
