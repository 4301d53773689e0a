"""``layerlab evaluate``: accuracy, loss and confusion matrix of a trained run on new data."""

from __future__ import annotations

import argparse
import json

from layerlab.cli.render import print_confusion

HELP = "evaluate a trained run or checkpoint on data"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN_DIR_OR_CHECKPOINT", help="a run directory or a .ckpt file")
    parser.add_argument(
        "--data", required=True, metavar="SOURCE", help="kind:path (imagefolder:/photos) or a YAML file"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on the last stdout line"
    )


def run(args: argparse.Namespace) -> int:
    from layerlab.inference.evaluate import evaluate_run
    from layerlab.train.rundir import layerlab_home

    result = evaluate_run(args.run, args.data, device=args.device, cache_dir=layerlab_home() / "cache")
    if args.json:
        print(json.dumps(result))
        return 0
    loss = "-" if result["loss"] is None else f"{result['loss']:.4f}"
    print(f"checkpoint {result['checkpoint']} (epoch {result['epoch']})")
    print(f"data       {result['source']}: {result['n']} examples")
    if "mse" in result:  # regression, reconstruction (MSE per pixel)
        print(f"mse        {result['mse']:.6g}  mae {result['mae']:.6g}  loss {loss} (per value)")
        return 0
    acc = "-" if result["accuracy"] is None else f"{100 * result['accuracy']:.2f}%"
    print(f"accuracy   {acc}  loss {loss}")
    matrix = result.get("confusion_matrix")
    if matrix:
        print_confusion(matrix, result["classes"])
    elif result.get("confusion_matrix_note"):
        print(f"confusion  {result['confusion_matrix_note']}")
    return 0
