"""The run directory's files: resolved config, network, preprocessing, metrics lines, summary."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import yaml

from layerlab.core.errors import ConfigError
from layerlab.core.mappingfile import read_mapping
from layerlab.train.checkpoint import CHECKPOINT_DIR, numbered_checkpoints, write_atomic
from layerlab.train.config import ExperimentConfig, experiment_from_mapping

CONFIG = "config.yaml"
NETWORK = "network.json"
PREPROCESSING = "preprocessing.json"
METRICS = "metrics.jsonl"
SUMMARY = "summary.json"


def layerlab_home() -> Path:
    """``$LAYERLAB_HOME`` (default ``./.layerlab``)."""
    return Path(os.environ.get("LAYERLAB_HOME") or ".layerlab")


def default_run_dir(config_path: str | Path | None) -> Path:
    """``$LAYERLAB_HOME/runs/<config stem>-<UTC timestamp>``."""
    stem = Path(config_path).stem if config_path else "run"
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S-%f")
    return layerlab_home() / "runs" / f"{stem}-{stamp}"


def check_fresh(run_dir: Path) -> None:
    """Refuse to start a new run over an earlier one (its checkpoints would be mixed up)."""
    if (
        (run_dir / METRICS).exists()
        or numbered_checkpoints(run_dir)
        or (run_dir / CHECKPOINT_DIR / "last.ckpt").exists()
    ):
        raise ConfigError(
            f"run directory '{run_dir}' already holds a run",
            hint=f"continue it with --resume {run_dir}, or choose another --run-dir",
        )


def _json(value) -> str:
    return json.dumps(value, indent=2, allow_nan=False, default=str) + "\n"


def write_json(path: Path, value) -> None:
    write_atomic(path, _json(value).encode())


def write_start_files(run_dir: Path, cfg: ExperimentConfig, network: dict, preprocessing: dict) -> None:
    """config.yaml (every default filled), network.json and preprocessing.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(run_dir / CONFIG, yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode())
    write_json(run_dir / NETWORK, network)
    write_json(run_dir / PREPROCESSING, preprocessing)


def read_config(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """The resolved config a run was started with (plus ``--set`` overrides, e.g. more epochs)."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise ConfigError(f"'{run_dir}' has no {CONFIG}", hint="pass the directory of a layerlab run")
    return experiment_from_mapping(read_mapping(path), overrides)


def _clean(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def append_metrics(run_dir: Path, row: dict) -> None:
    """Append one epoch's row to metrics.jsonl (flushed, so a kill loses at most the line in flight)."""
    with open(run_dir / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({k: _clean(v) for k, v in row.items()}) + "\n")
        handle.flush()


def read_metrics(run_dir: Path) -> list[dict]:
    """Every well-formed row of metrics.jsonl (a torn last line is ignored)."""
    path = run_dir / METRICS
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and "epoch" in row:
            rows.append(row)
    return rows


def truncate_metrics(run_dir: Path, epoch: int) -> list[dict]:
    """Keep only rows up to ``epoch`` (the checkpoint resumed from), so nothing is duplicated."""
    rows = [r for r in read_metrics(run_dir) if int(r["epoch"]) <= epoch]
    write_atomic(run_dir / METRICS, "".join(json.dumps(r) + "\n" for r in rows).encode())
    return rows


def reset_metrics(run_dir: Path) -> None:
    (run_dir / METRICS).unlink(missing_ok=True)


def write_summary(run_dir: Path, summary: dict) -> None:
    write_json(run_dir / SUMMARY, summary)
