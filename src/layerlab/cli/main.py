"""Entry point of ``layerlab``: a lazy registry of commands, one module each.

Every command module in ``layerlab.cli.commands`` defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules are imported only when
their command runs, so ``layerlab --help`` stays fast (no torch, no Django).
A ``LayerlabError`` becomes one line on stderr and its exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from layerlab.core.errors import LayerlabError

# command name -> (module under layerlab.cli.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("train", "train a network from an experiment config"),
    "sweep": ("sweep", "search hyper-parameters with Optuna (a sweep: section); each trial is a run"),
    "experiment": (
        "experiment",
        "run a research experiment (an experiment: section); each trial is a run",
    ),
    "evaluate": ("evaluate", "evaluate a trained run or checkpoint on data"),
    "predict": ("predict", "print the top classes a trained run predicts for input files"),
    "inspect": (
        "inspect",
        "show what a trained run's layers respond to for an input: activations, filters, top examples",
    ),
    "export": ("export", "export a trained model (safetensors, torchscript, onnx)"),
    "arch": ("arch", "show a network's layers, shapes, parameters and warnings"),
    "data": ("data", "inspect a data source: classes, counts, shapes, skipped files"),
    "serve": ("serve", "start the lab server (web server plus workers)"),
    "worker": ("worker", "run a worker process that executes queued jobs"),
    "migrate": ("migrate", "create or update the lab database"),
    "createuser": ("createuser", "create a user of the lab server"),
    "token": ("token", "print the API token of a user, for scripts"),
    "runs": ("runs", "list, show and compare recorded runs"),
    "serve-model": ("serve_model", "serve a trained run's model over HTTP (ONNX Runtime, micro-batching)"),
    "pipeline": (
        "pipeline",
        "run a pipeline of stages with Luigi (dataset, train, evaluate, export, report)",
    ),
    "loadtest": ("loadtest", "load-test a prediction endpoint: throughput and latency percentiles"),
}

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only the selected command's module is imported."""
    parser = argparse.ArgumentParser(
        prog="layerlab", description="layerlab: a self-hosted deep-learning lab."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == selected:
            module = importlib.import_module(f"layerlab.cli.commands.{module_name}")
            module.add_arguments(command_parser)
            command_parser.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command and return its exit code (documented in docs/cli.md)."""
    argv = sys.argv[1:] if argv is None else argv
    selected = next((a for a in argv if not a.startswith("-")), None)
    if selected not in COMMANDS:
        selected = None
    parser = build_parser(selected)
    args = parser.parse_args(argv)
    if args.version:
        from layerlab import __version__

        print(__version__)
        return 0
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.handler(args) or 0)
    except LayerlabError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout was closed early (``layerlab arch schema | head``): end quietly like other Unix tools;
        # stdout goes to devnull so the interpreter's final flush does not raise again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13  # SIGPIPE


if __name__ == "__main__":  # `python -m layerlab.cli.main`: how torchrun starts each rank
    from layerlab.train.launch import exit_process

    exit_process(main())
