"""``layerlab predict``: the top classes a trained run predicts for input files (a regression's values,
an autoencoder's reconstructions)."""

from __future__ import annotations

import argparse
import json

HELP = "print the top classes a trained run predicts for input files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="a run directory or a .ckpt file")
    parser.add_argument(
        "--input",
        nargs="+",
        required=True,
        metavar="FILE",
        help="input files: images, or rows of .csv/.npy/.npz for a run on vectors, or clips for a run on "
        "video (folders of frames, .npy/.npz of (N, T, C, H, W))",
    )
    parser.add_argument("--top-k", type=int, default=3, help="classes listed per file (default 3)")
    parser.add_argument(
        "--json", action="store_true", help="print the predictions as JSON on the last stdout line"
    )


def run(args: argparse.Namespace) -> int:
    from layerlab.inference.predict import predict_files

    predictions = predict_files(args.run, args.input, top_k=args.top_k)
    if args.json:
        print(json.dumps(predictions))
        return 0
    for item in predictions:
        if "values" in item:  # regression
            shown = ", ".join(f"{name} {value:.4g}" for name, value in item["values"].items())
        elif "reconstruction" in item:  # an autoencoder: its reconstruction with --json
            shown = f"reconstructed, MSE per value {item['mse']:.4g} (the values: --json)"
        else:
            shown = ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in item["top"])
        print(f"{item['file']}: {shown}")
    return 0
