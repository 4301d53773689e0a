"""``layerlab data show SOURCE``: classes, counts per split and class, shapes and skipped files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "inspect a data source: classes, counts, shapes, skipped files"
SHOWN_SKIPPED = 20
SHOWN_CLASSES = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``data show SOURCE [--json] [--seed N] [--cache-dir DIR]``."""
    parser.add_argument("action", choices=["show"], help="show: describe the source")
    parser.add_argument(
        "source",
        help="kind:path (imagefolder:/data/photos, npz:/x.npz, npy:/dir, csv:/x.csv, digits:, mnist:, spiral:, "
        "not-so-clevr:) or a YAML/JSON config with a data section",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument("--seed", type=int, default=None, help="seed for generators and splits (default: 0)")
    parser.add_argument(
        "--cache-dir", type=Path, default=None, help="decoded-data cache (default $LAYERLAB_HOME/cache)"
    )


def _seed_of(source: str, seed: int | None) -> int:
    """The --seed, else the config file's own seed, else 0."""
    if seed is not None:
        return seed
    path = Path(source)
    if path.suffix in (".yaml", ".yml", ".json") and path.is_file():
        from layerlab.core.mappingfile import read_mapping

        mapping = read_mapping(path)
        if isinstance(mapping.get("seed"), int):
            return mapping["seed"]
    return 0


def render_text(report: dict) -> str:
    """The report as a few readable lines."""
    lines = [
        f"source: {report['source']}  ({report['kind']}, input shape {tuple(report['input_shape'])})",
        f"classes: {len(report['classes'])}  "
        + ", ".join(report["classes"][:SHOWN_CLASSES])
        + (" ..." if len(report["classes"]) > SHOWN_CLASSES else ""),
        "examples: " + ", ".join(f"{split} {n}" for split, n in report["totals"].items()),
    ]
    counts = report["counts"]
    names = [name for name in report["classes"] if any(name in per for per in counts.values())]
    if len(names) <= SHOWN_CLASSES:
        width = max([len("class"), *(len(n) for n in names)])
        lines.append(f"  {'class':<{width}}  " + "  ".join(f"{s:>6}" for s in counts))
        for name in names:
            lines.append(f"  {name:<{width}}  " + "  ".join(f"{counts[s].get(name, 0):>6}" for s in counts))
    skipped = report["skipped"]
    lines.append(f"skipped files: {len(skipped)}")
    for item in skipped[:SHOWN_SKIPPED]:
        lines.append(f"  {item['path']}: {item['reason']}")
    if len(skipped) > SHOWN_SKIPPED:
        lines.append(f"  ... and {len(skipped) - SHOWN_SKIPPED} more")
    lines.append(f"cache: {report['cache']}  ({report['seconds']:.2f} s)")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Prepare the source as training would (split included) and print what came out."""
    from layerlab.data.prepare import parse_source, prepare_data

    cfg = parse_source(args.source)
    prepared = prepare_data(cfg, seed=_seed_of(args.source, args.seed), cache_dir=args.cache_dir)
    report = prepared.report.to_dict()
    print(json.dumps(report) if args.json else render_text(report))
    return 0
