"""``layerlab serve-model``: a standalone prediction server for one trained run (ONNX Runtime, micro-batched)."""

from __future__ import annotations

import argparse
from pathlib import Path

from layerlab.core.errors import LayerlabError

HELP = "serve a trained run's model over HTTP (ONNX Runtime, micro-batching, top-k out)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "run", metavar="RUN", help="a run directory, a .ckpt file, or a run ID of the local lab"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8100, help="port (default 8100)")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes, each with its engine (default 1)"
    )
    parser.add_argument("--threads", type=int, default=8, help="request threads per worker (default 8)")
    parser.add_argument(
        "--session-threads", type=int, default=1, help="ONNX Runtime threads per worker (default 1)"
    )
    parser.add_argument(
        "--engine", choices=("onnxruntime", "eager"), default="onnxruntime", help="default onnxruntime"
    )
    parser.add_argument(
        "--latency-budget-ms",
        type=float,
        default=None,
        help="the most one batch may take when choosing the max batch from the measured curve (default 4)",
    )
    parser.add_argument("--max-batch", type=int, default=None, help="fix the max batch instead of measuring")
    parser.add_argument("--max-wait-ms", type=float, default=None, help="fix the batching wait (ms)")
    parser.add_argument("--max-body-mb", type=float, default=16, help="largest request body (default 16 MB)")
    parser.add_argument(
        "--max-image-pixels", type=int, default=None, help="pixel cap per image (default 50M)"
    )


def resolve_run(value: str) -> tuple[Path, str]:
    """A run directory or checkpoint as given, else a run ID of the local lab: (path, name shown)."""
    path = Path(value)
    if path.exists() or not value.isdigit():
        return path, path.name or str(path)
    from layerlab.server.bootstrap import require_migrated

    require_migrated()
    from layerlab.apps.runs.files import run_checkpoint_local
    from layerlab.apps.runs.models import Run

    run = Run.objects.filter(id=int(value)).first()
    if run is None:
        raise LayerlabError(f"run {value} does not exist", hint="list runs with: layerlab runs ls")
    return run_checkpoint_local(run=run), f"run {run.id}"


def run(args: argparse.Namespace) -> int:
    from layerlab.inference.calibrate import LATENCY_BUDGET_MS
    from layerlab.inference.server import ServeOptions, serve

    if args.workers < 1 or args.threads < 1 or args.session_threads < 1:
        raise LayerlabError("--workers, --threads and --session-threads must be at least 1")
    if args.max_batch is not None and args.max_batch < 1:
        raise LayerlabError("--max-batch must be at least 1", where="--max-batch")
    path, name = resolve_run(args.run)
    options = ServeOptions(
        host=args.host,
        port=args.port,
        workers=args.workers,
        threads=args.threads,
        session_threads=args.session_threads,
        engine=args.engine,
        latency_budget_ms=args.latency_budget_ms or LATENCY_BUDGET_MS,
        max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms,
        max_body_bytes=int(args.max_body_mb * 1024 * 1024),
        max_image_pixels=args.max_image_pixels,
    )
    serve(path, options, name=name, announce=lambda line: print(line, flush=True))
    return 0
