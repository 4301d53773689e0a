"""``layerlab migrate``: create or update the lab database."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="print nothing unless something fails")


def run(args: argparse.Namespace) -> int:
    from layerlab.server.bootstrap import migrate_database

    migrate_database(verbosity=0 if args.quiet else 1)
    return 0
