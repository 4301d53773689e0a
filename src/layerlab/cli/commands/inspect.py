"""``layerlab inspect``: what a trained run's layers respond to, for one input, as pictures and a JSON index."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = (
    "show what a trained run's layers respond to for an input: activations, filters, top examples; "
    "--baseline: a clip-counting run's peak-count baseline"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", metavar="RUN", help="a run directory or a .ckpt file")
    parser.add_argument(
        "--input",
        nargs="+",
        metavar="FILE",
        help="an image, or a .npy/.npz array of the model's input shape; several images (or a (T, C, H, W) "
        "array) are frames: the chosen channel's trace over them is drawn too; a run on clips takes one clip "
        "(a folder of frames or a .npy)",
    )
    parser.add_argument(
        "--layer", metavar="NAME", help="layer of the top 9, maximization and trace (default: last conv)"
    )
    parser.add_argument(
        "--channel", type=int, metavar="N", help="its channel (default: the most active on the input)"
    )
    parser.add_argument("--out", metavar="DIR", help="also copy the pictures and index.json here")
    parser.add_argument(
        "--parts",
        nargs="+",
        metavar="PART",
        help="what to compute (default: all): activations stats filters topk maximize attributions trace",
    )
    parser.add_argument("--steps", type=int, help="activation maximization steps (default 64, at most 2000)")
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the maximization and attributions (default 0)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="CPU threads (default 1: fastest for one input on a shared machine)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="a run on clips (timedistributed, classes are counts): show its peak-count baseline beside its "
        "test accuracy (frames.json); computed and written into the run directory when it has none",
    )
    parser.add_argument("--json", action="store_true", help="print the index as JSON on the last stdout line")


def run(args: argparse.Namespace) -> int:
    if args.baseline:
        return run_baseline(args)
    if not args.input:
        from layerlab.core.errors import ConfigError

        raise ConfigError(
            "give an input to inspect",
            hint="--input FILE (an image or a .npy), or --baseline",
            where="--input",
        )
    from layerlab.core import runlayout
    from layerlab.inference.inspect.maximize import Regularizers
    from layerlab.inference.inspect.report import PARTS, inspect_run, load_input
    from layerlab.inference.trained import load_trained

    trained = load_trained(args.run)
    inputs, name = load_input(trained, [Path(p) for p in args.input])
    regularizers = Regularizers(steps=args.steps) if args.steps is not None else Regularizers()
    cache_dir = runlayout.run_dir_of_checkpoint(trained.checkpoint) / runlayout.INSPECT_DIR
    index = inspect_run(
        trained,
        inputs,
        layer=args.layer,
        channel=args.channel,
        parts=args.parts or PARTS,
        cache_dir=cache_dir,
        out_dir=args.out,
        input_name=name,
        regularizers=regularizers,
        seed=args.seed,
        threads=args.threads,
    )
    if args.json:
        print(json.dumps(index))
        return 0
    _print_summary(index, args.out)
    return 0


def run_baseline(args: argparse.Namespace) -> int:
    """``--baseline``: the run's stored frames report, else computed from its best checkpoint and written."""
    from layerlab.core import runlayout
    from layerlab.inference import frames_report
    from layerlab.train import rundir

    run_dir = Path(args.run)
    run_dir = runlayout.run_dir_of_checkpoint(run_dir) if run_dir.is_file() else run_dir
    report = frames_report.read_report(run_dir)
    if report is None:
        report = frames_report.report_for_run(run_dir, cache_dir=rundir.layerlab_home() / "cache")
    if args.json:
        print(json.dumps(report))
        return 0
    for line in frames_report.summary_lines(report):
        print(line)
    print(f"report     {run_dir / runlayout.FRAMES_REPORT}, traces {run_dir / runlayout.FRAMES_TRACES}")
    return 0


def _print_summary(index: dict, out: str | None) -> None:
    prediction = (index["input"].get("prediction") or {}).get("top") or []
    guess = ", ".join(f"{t['class']} {100 * t['probability']:.1f}%" for t in prediction)
    print(f"{index['input']['name']}: {guess}" if guess else index["input"]["name"])
    for item in index["layers"]:
        stats = item.get("stats") or {}
        dead = f"  {stats['dead']} dead of {item['channels']} over {stats['n']} examples" if stats else ""
        print(
            f"  {item['name']:<16} {item['kind']:<14} {'x'.join(map(str, item['shape'])):<12}{dead}".rstrip()
        )
    if (index.get("stats") or {}).get("error"):
        print(f"channel statistics: {index['stats']['error']}")
    if index.get("topk"):
        top = index["topk"]
        if "error" in top:
            print(f"top 9: {top['error']}")
        else:
            print(
                f"top 9 of {top['layer']} channel {top['channel']}: examples {[e['index'] for e in top['examples']]}"
            )
    for target, found in (index.get("maximize") or {}).items():
        print(f"maximized {target}: {found['start']:.3g} -> {found['final']:.3g} in {found['steps']} steps")
    if (index.get("attributions") or {}).get("error"):
        print(f"attributions: {index['attributions']['error']}")
    if index.get("trace"):
        print(
            f"trace of {index['trace']['layer']} channel {index['trace']['channel']}: {index['trace']['count']} peaks"
        )
    state = "cached" if index.get("cached") else f"computed in {index['seconds'].get('total', 0):.2f}s"
    print(f"{state}: {index['dir']}" + (f" (copied to {out})" if out else ""))
