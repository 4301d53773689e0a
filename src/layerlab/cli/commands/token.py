"""``layerlab token NAME``: print the user's API token, for scripts (``LAYERLAB_TOKEN``)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the user name")


def run(args: argparse.Namespace) -> int:
    from layerlab.server.bootstrap import require_migrated

    require_migrated()
    from layerlab.apps.accounts.services import user_token

    print(user_token(username=args.name))
    return 0
