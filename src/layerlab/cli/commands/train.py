"""``layerlab train``: train a network from an experiment config, or resume a run."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from layerlab.core.errors import ConfigError

HELP = "train a network from an experiment config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="experiment config (YAML or JSON); optional with --resume")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key",
    )
    parser.add_argument("--run-dir", help="run directory (default $LAYERLAB_HOME/runs/<config>-<timestamp>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON on the last stdout line"
    )


def stderr_logging() -> None:
    """Warnings and notes of the engine as one plain line each on stderr."""
    logger = logging.getLogger("layerlab")
    if not any(getattr(h, "_layerlab_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler._layerlab_cli = True
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def print_summary(summary: dict) -> None:
    """The end of a run, for people."""

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    print(f"run dir    {summary['run_dir']}")
    print(f"epochs     {summary['epochs']} ({summary['status']}), {summary['seconds']:.1f}s")
    print(
        f"accuracy   train {pct(summary['train_accuracy'])}  val {pct(summary['val_accuracy'])}  "
        f"test {pct(summary['test_accuracy'])}  (weights: {summary['evaluated_weights']})"
    )
    matrix = summary.get("confusion_matrix")
    if matrix and len(matrix) <= 12:
        print("confusion  (rows: true class, columns: predicted)")
        width = max(len(str(v)) for row in matrix for v in row) + 1
        for name, row in zip(summary["classes"], matrix, strict=True):
            print(f"  {name[:12]:>12} " + "".join(f"{v:>{width}}" for v in row))
    elif summary.get("confusion_matrix_note"):
        print(f"confusion  {summary['confusion_matrix_note']}")
    print(f"verdict    {summary['verdict']}")
    print(f"weights    sha256 {summary['weights_sha256']}")


def run(args: argparse.Namespace) -> int:
    from layerlab.train import rundir
    from layerlab.train.config import load_experiment
    from layerlab.train.progress import ProgressCallback
    from layerlab.train.runner import train_experiment

    stderr_logging()
    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise ConfigError(
                "--run-dir and --resume name different directories", hint="give only --resume DIR"
            )
        if args.config:
            print(f"note: resuming reads the config from {run_dir}; ignoring {args.config}", file=sys.stderr)
        if not run_dir.is_dir():
            raise ConfigError(
                f"run directory '{run_dir}' does not exist",
                hint="pass the directory of an earlier run",
                where="--resume",
            )
        cfg = rundir.read_config(run_dir, args.overrides)
    elif not args.config:
        raise ConfigError(
            "give an experiment config or --resume DIR", hint="e.g. layerlab train examples/spiral-mlp.yaml"
        )
    else:
        cfg = load_experiment(args.config, args.overrides)
        run_dir = Path(args.run_dir) if args.run_dir else rundir.default_run_dir(args.config)

    progress = ProgressCallback(sys.stderr if args.json else sys.stdout)
    try:
        summary = train_experiment(
            cfg,
            run_dir,
            resume=bool(args.resume),
            device=args.device,
            callbacks=[progress],
            cache_dir=rundir.layerlab_home() / "cache",
        )
    finally:
        progress.close()
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print_summary(summary)
    return 0
