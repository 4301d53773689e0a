"""``layerlab loadtest``: throughput and latency percentiles of a prediction endpoint."""

from __future__ import annotations

import argparse
import json

HELP = "load-test a prediction endpoint: throughput and latency percentiles"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", metavar="URL", help="the endpoint, e.g. http://127.0.0.1:8100/predict")
    parser.add_argument(
        "--rate", type=float, default=100.0, help="requests per second, 0 = as fast as possible (default 100)"
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="client connections (default 8)")
    parser.add_argument(
        "--input",
        required=True,
        metavar="FILE",
        help="the request body: an image, a .json body or a .npy array",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON on the last line")


def run(args: argparse.Namespace) -> int:
    from layerlab.inference.loadtest import load_test, payload_from_file, summary_lines

    result = load_test(
        args.url,
        payload_from_file(args.input),
        rate=args.rate,
        duration=args.duration,
        concurrency=args.concurrency,
    )
    for line in summary_lines(result):
        print(line)
    if args.json:
        print(json.dumps(result))
    return 0 if result["ok"] else 1
