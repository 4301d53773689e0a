"""The run directory's layout: every file and checkpoint name, in one torch-free place.

The engine writes a run as::

    <run_dir>/
      config.yaml  network.json  preprocessing.json     written when the run starts (START_FILES)
      metrics.jsonl                                      one line per epoch
      summary.json  test_predictions.npz                 written when it ends
      checkpoints/best.ckpt  last.ckpt  epoch-NNNN.ckpt  best epoch, newest, every checkpoint_every
      export/model.<ext>                                 `layerlab export`

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
EXPORT_DIR = "export"

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_SUFFIX = ".ckpt"
BEST = "best.ckpt"
LAST = "last.ckpt"
NUMBERED = re.compile(r"^epoch-(\d{4,})\.ckpt$")

# What ``on_checkpoint`` says was written (``checkpoint_kind`` of a file name).
KIND_BEST, KIND_NUMBERED, KIND_LAST = "best", "numbered", "last"

START_FILES = (CONFIG, NETWORK, PREPROCESSING)
END_FILES = (SUMMARY, METRICS, TEST_PREDICTIONS, *START_FILES)


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
