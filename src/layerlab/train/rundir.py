"""The run directory's files: resolved config, network, preprocessing, metrics lines, summary."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from pathlib import Path

import yaml

from layerlab.core.errors import CheckpointError, ConfigError
from layerlab.core.mappingfile import read_mapping
from layerlab.core.runlayout import CONFIG, LAST, METRICS, NETWORK, PREPROCESSING, SUMMARY
from layerlab.train.checkpoint import CHECKPOINT_DIR, numbered_checkpoints, write_atomic
from layerlab.train.config import ExperimentConfig, experiment_from_mapping


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
        or (run_dir / CHECKPOINT_DIR / LAST).exists()
    ):
        raise ConfigError(
            f"run directory '{run_dir}' already holds a run",
            hint=(
                f"continue it with --resume {run_dir} (a run killed before its first checkpoint starts over "
                "there from epoch 1), or choose another --run-dir"
            ),
        )


def finite_only(value):
    """``value`` with every NaN or infinite float (at any depth) written as None: JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite_only(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_only(v) for v in value]
    return value


def _json(value) -> str:
    return json.dumps(finite_only(value), indent=2, allow_nan=False, default=str) + "\n"


def write_json(path: Path, value) -> None:
    write_atomic(path, _json(value).encode())


def write_config(run_dir: Path, cfg: ExperimentConfig) -> None:
    """config.yaml: the resolved config, every default filled (rewritten only when it changed)."""
    data = yaml.safe_dump(cfg.to_dict(), sort_keys=False).encode()
    path = run_dir / CONFIG
    if not path.is_file() or path.read_bytes() != data:
        write_atomic(path, data)


def write_start_files(run_dir: Path, cfg: ExperimentConfig, network: dict, preprocessing: dict) -> None:
    """config.yaml (every default filled), network.json and preprocessing.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg)
    write_json(run_dir / NETWORK, network)
    write_json(run_dir / PREPROCESSING, preprocessing)


def read_config(run_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> ExperimentConfig:
    """The resolved config a run was started with (plus ``--set`` overrides, e.g. more epochs)."""
    path = run_dir / CONFIG
    if not path.is_file():
        raise CheckpointError(
            f"cannot resume '{run_dir}': it has no {CONFIG} (not a layerlab run directory)",
            hint="pass the directory of a layerlab run, or start one with `layerlab train CONFIG --run-dir DIR`",
        )
    check_resume_overrides(overrides)
    return experiment_from_mapping(read_mapping(path), overrides)


# What ``--set`` may change when a run resumes: the rest (model, data, optimizer, lr, schedule ...)
# is fixed by the checkpoint's weights, optimizer and scheduler state, so a new value would be
# recorded without being what trains.
RESUME_OVERRIDABLE = (
    "train.epochs",
    "train.checkpoint_every",
    "train.keep_checkpoints",
    "train.num_threads",
    "train.early_stopping.patience",
    "train.early_stopping.min_delta",
    # the world size of a torchrun group: the same one resumes exactly, another continues (with a warning)
    "train.distributed.nproc_per_node",
    "train.distributed.nnodes",
)


def check_resume_overrides(overrides: list[str] | tuple[str, ...]) -> None:
    """Refuse ``--set`` keys a resumed run cannot apply (see ``RESUME_OVERRIDABLE``)."""
    for assignment in overrides:
        key = ".".join(k for k in assignment.split("=", 1)[0].strip().split(".") if k)
        if key not in RESUME_OVERRIDABLE:
            raise ConfigError(
                f"--set {key} cannot change when a run resumes: its checkpoint's "
                f"{'model' if key.startswith('model') else 'data' if key.startswith('data') else 'training state'}"
                " continues as it was",
                hint=(
                    f"on resume only {', '.join(RESUME_OVERRIDABLE)} can be set; for another value start a new run "
                    "(layerlab train CONFIG --set ...)"
                ),
                where="--set",
            )


def append_metrics(run_dir: Path, row: dict) -> None:
    """Append one epoch's row to metrics.jsonl (flushed, so a kill loses at most the line in flight)."""
    with open(run_dir / METRICS, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(finite_only(row), allow_nan=False) + "\n")
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
