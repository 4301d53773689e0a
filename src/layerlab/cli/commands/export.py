"""``layerlab export``: write a trained model as safetensors, TorchScript or ONNX (checked against eager)."""

from __future__ import annotations

import argparse

HELP = "export a trained model (safetensors, torchscript, onnx)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="a run directory or a .ckpt file")
    parser.add_argument("--format", required=True, choices=("safetensors", "torchscript", "onnx"))
    parser.add_argument("--out", help="file to write (default RUN/export/model.<ext>)")


def run(args: argparse.Namespace) -> int:
    from layerlab.inference.export import export_model

    path = export_model(args.run, args.format, args.out)
    # One file is the whole model: ONNX weights are embedded; class names and preprocessing ride along.
    print(
        f"wrote {path} ({args.format}; outputs match the eager model; "
        "one file with the weights, class names and preprocessing)"
    )
    return 0
