"""``layerlab arch show|spec|presets|schema``: a network's layers, shapes, parameters, MACs and warnings."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from layerlab.core.errors import ConfigError

HELP = "show a network's layers, shapes, parameters and warnings"
EXPERIMENT_KEYS = {"seed", "data", "model", "train", "name"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``arch show|spec TARGET [--json] [--input C,H,W] [--classes N] [--option k=v] [--set k=v]``, ``arch presets``, ``arch schema``."""
    parser.add_argument(
        "action",
        choices=["show", "spec", "presets", "schema"],
        help="show: the table; spec: the full spec as YAML; presets: list them; schema: the spec's JSON schema",
    )
    parser.add_argument(
        "target",
        nargs="?",
        help="a spec file (with input:), an experiment config, or a preset name (show, spec)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--input", metavar="C,H,W", help="input shape of one example, e.g. 1,64,64 or 2")
    parser.add_argument(
        "--classes", type=int, metavar="N", help="number of classes (what out: classes means)"
    )
    parser.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a preset option, e.g. hidden=[64,64]",
    )
    parser.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override an experiment config key"
    )


def _parse_input(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [p for p in text.replace("x", ",").replace(" ", ",").split(",") if p]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if not shape or min(shape) < 1:
        raise ConfigError(
            f"'{text}' is not a shape", hint="write --input 1,64,64 (C,H,W) or --input 2", where="--input"
        )
    return shape


def _preset_options(assignments: list[str]) -> dict[str, Any]:
    from layerlab.train.config import parse_scalar

    options = {}
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"'{assignment}' is not KEY=VALUE", hint="e.g. --option hidden=[64,64]", where="--option"
            )
        options[key.strip()] = parse_scalar(value)
    return options


def _experiment_network(mapping: dict, args: argparse.Namespace, input_shape, num_classes):
    from layerlab.nn.resolve import network_for
    from layerlab.train.config import experiment_from_mapping

    cfg = experiment_from_mapping(mapping, args.set)
    if input_shape is None or num_classes is None:
        from layerlab.data.prepare import input_signature

        data_shape, data_classes = input_signature(cfg.data)
        input_shape = input_shape or data_shape
        num_classes = num_classes or data_classes
    return network_for(cfg.model, input_shape=input_shape, num_classes=num_classes)


def resolve_target(args: argparse.Namespace):
    """The NetworkSpec that ``target`` names: a spec file, an experiment config, or a preset."""
    from layerlab.nn.presets import PRESETS, preset_spec
    from layerlab.nn.resolve import SPEC_SUFFIXES, load_spec_file
    from layerlab.nn.spec import parse_network

    if not args.target:
        raise ConfigError(
            "give a spec file, an experiment config or a preset name",
            hint="e.g. arch show lenet5 --input 1,32,32 --classes 10",
        )
    input_shape = _parse_input(args.input)
    path = Path(args.target)
    if not path.exists() and args.target in PRESETS:
        if input_shape is None:
            raise ConfigError(
                f"preset {args.target} needs an input shape", hint="add --input C,H,W", where="--input"
            )
        mapping = preset_spec(
            args.target, input_shape=input_shape, num_classes=args.classes, **_preset_options(args.option)
        )
        return parse_network(mapping, input_shape=input_shape, num_classes=args.classes)
    if not path.exists() and path.suffix not in SPEC_SUFFIXES and "/" not in args.target:
        # a bare name (resnet): not a missing file but an unknown preset
        from layerlab.core.configtree import suggest

        close = suggest(args.target, PRESETS)
        listed = f"presets: {', '.join(PRESETS)}"
        raise ConfigError(
            f"'{args.target}' is neither a preset nor a file",
            hint=f"did you mean '{close}'? {listed}" if close else listed,
        )
    if args.option:
        raise ConfigError("--option applies to preset names only", where="--option")
    mapping = load_spec_file(path)
    if "layers" in mapping and not EXPERIMENT_KEYS & set(mapping):
        # --input / --classes ask "what if": they replace the file's own values.
        if input_shape is not None:
            mapping.pop("input", None)
        if args.classes is not None:
            mapping.pop("classes", None)
        return parse_network(mapping, input_shape=input_shape, num_classes=args.classes)
    return _experiment_network(mapping, args, input_shape, args.classes)


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def render_table(summary) -> None:
    """Print the summary as a rich table, then the totals and the network-wide warnings."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=f"input {_shape(summary.input_shape)}", title_justify="left")
    for column, justify in [("#", "right"), ("layer", "left"), ("kind", "left"), ("output", "left"),
                            ("params", "right"), ("MACs", "right"), ("warnings", "left")]:  # fmt: skip
        table.add_column(column, justify=justify, overflow="fold")
    for row in summary.rows:
        indent = "  " * row.depth
        table.add_row(
            row.index, indent + row.name, row.kind, _shape(row.output_shape), f"{row.params:,}", f"{row.macs:,}",
            Text("; ".join(row.warnings)),
        )  # fmt: skip
    console.print(table)
    console.print(
        f"total: {summary.total_params:,} parameters, {summary.total_macs:,} multiply-adds per example, "
        f"output {_shape(summary.output_shape)}",
        highlight=False,
    )
    row_warnings = {f"{row.name}: {text}" for row in summary.rows for text in row.warnings}
    for text in summary.warnings:
        if text not in row_warnings:
            console.print(f"warning: {text}", highlight=False, markup=False)


def run(args: argparse.Namespace) -> int:
    """Run the arch action; errors are LayerlabErrors that main renders as one line."""
    if args.action == "presets":
        from layerlab.nn.presets import PRESETS, preset_options

        if args.json:
            print(
                json.dumps(
                    {name: {"description": d, "options": preset_options(name)} for name, d in PRESETS.items()}
                )
            )
        else:
            width = max(len(name) for name in PRESETS)
            for name, description in PRESETS.items():
                print(f"{name:<{width}}  {description}")
                options = ", ".join(f"{k}={v!r}" for k, v in preset_options(name).items())
                print(f"{'':<{width}}  options: {options}")
        return 0
    if args.action == "schema":
        from layerlab.nn.spec import network_json_schema

        print(json.dumps(network_json_schema(), indent=2))
        return 0
    spec = resolve_target(args)
    if args.action == "spec":
        import yaml

        text = json.dumps(spec.to_dict()) if args.json else yaml.safe_dump(spec.to_dict(), sort_keys=False)
        print(text.rstrip())
        return 0
    from layerlab.nn.shapes import summarize

    summary = summarize(spec)
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        render_table(summary)
    return 0
