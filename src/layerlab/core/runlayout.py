"""The run directory's layout: every file and checkpoint name, in one torch-free place.

The engine writes a run as::

    <run_dir>/
      config.yaml  network.json  preprocessing.json     written when the run starts (START_FILES)
      metrics.jsonl                                      one line per epoch
      summary.json  test_predictions.npz                 written when it ends
      reconstruction.json  reconstruction.png            reconstruction runs, when they end
      frames.json  frames.png                            clip-counting runs (timedistributed), when they end
      checkpoints/best.ckpt  last.ckpt  epoch-NNNN.ckpt  best epoch, newest, every checkpoint_every
      export/model.<ext>                                 `layerlab export`
      inspect/<key>/index.json  *.png                    `layerlab inspect` (cached per checkpoint and input)

The engine (``train``), the inference package, the server apps and the dashboard all take these
names from here (standard library only, so importing it costs nothing and pulls no torch).
"""

from __future__ import annotations

import re
from pathlib import Path

CONFIG = "config.yaml"
NETWORK = "network.json"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"
TEST_PREDICTIONS = "test_predictions.npz"
RECONSTRUCTION_REPORT = "reconstruction.json"  # reconstruction runs: test MSE beside PCA and the noisy input
RECONSTRUCTION_GRID = "reconstruction.png"  # input / (noisy) / reconstruction rows of test examples
FRAMES_REPORT = "frames.json"  # clip-counting runs: the network's accuracy beside the peak-count baseline
FRAMES_TRACES = "frames.png"  # the baseline's chosen unit over a few test clips, peaks marked
EXPORT_DIR = "export"
INSPECT_DIR = "inspect"  # `layerlab inspect` and the "What it learned" tab: <key>/index.json + PNGs

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".ckpt"
BEST = "best.ckpt"
LAST = "last.ckpt"
NUMBERED = re.compile(r"^epoch-(\d{4,})\.ckpt$")

# What ``on_checkpoint`` says was written (``checkpoint_kind`` of a file name).
KIND_BEST, KIND_NUMBERED, KIND_LAST = "best", "numbered", "last"

START_FILES = (CONFIG, NETWORK, PREPROCESSING)
END_FILES = (
    SUMMARY, METRICS, TEST_PREDICTIONS, RECONSTRUCTION_REPORT, RECONSTRUCTION_GRID, FRAMES_REPORT, FRAMES_TRACES,
    *START_FILES,
)  # fmt: skip


def numbered_name(epoch: int) -> str:
    """``epoch-0007.ckpt``: the numbered checkpoint of ``epoch``."""
    return f"epoch-{int(epoch):04d}{CHECKPOINT_SUFFIX}"


def numbered_epoch(name: str) -> int | None:
    """The epoch of a numbered checkpoint's file name, else None."""
    match = NUMBERED.match(name)
    return int(match.group(1)) if match else None


def checkpoint_kind(name: str) -> str | None:
    """``best``, ``last`` or ``numbered`` for a checkpoint's file name (or path); None for another file."""
    name = Path(name).name
    if name == BEST:
        return KIND_BEST
    if name == LAST:
        return KIND_LAST
    return KIND_NUMBERED if NUMBERED.match(name) else None


def checkpoint_dir(run_dir: str | Path) -> Path:
    """``<run_dir>/checkpoints``."""
    return Path(run_dir) / CHECKPOINT_DIR


def has_checkpoints(run_dir: str | Path) -> bool:
    """Whether the run directory holds at least one checkpoint file."""
    folder = checkpoint_dir(run_dir)
    return folder.is_dir() and any(folder.glob(f"*{CHECKPOINT_SUFFIX}"))


def run_dir_of_checkpoint(path: str | Path) -> Path:
    """The run directory a checkpoint file belongs to (its folder's parent for ``checkpoints/x.ckpt``)."""
    folder = Path(path).parent
    return folder.parent if folder.name == CHECKPOINT_DIR else folder


# An experiment's directory (layerlab.research, `layerlab experiment run`):
#   <out_dir>/experiment.json  the checked config and its fingerprint (a rerun must match)
#   <out_dir>/trials/<key, '/' as '__'>/  one run directory per trial, plus trial.json (key, status, seconds)
#   <out_dir>/report.json  report.md  plots/<name>.png
EXPERIMENT = "experiment.json"
TRIALS_DIR = "trials"
TRIAL = "trial.json"
REPORT_JSON = "report.json"
REPORT_MD = "report.md"
PLOTS_DIR = "plots"


def trial_dir_name(key: str) -> str:
    """The folder of a trial's run under ``trials/``: its key with ``/`` written as ``__``."""
    return key.replace("/", "__")
