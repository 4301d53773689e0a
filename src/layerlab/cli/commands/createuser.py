"""``layerlab createuser NAME [--superuser]``: create a user, or claim one made by ``layerlab train``.

The password comes from a prompt or stdin.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from layerlab.core.errors import LayerlabError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the user name")
    parser.add_argument("--superuser", action="store_true", help="may use the admin and sees every project")
    parser.add_argument("--email", default="", help="e-mail address (optional)")


def read_password() -> str:
    """Prompt twice on a terminal; otherwise read the first line of stdin (for scripts)."""
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password (again): ") != first:
            raise LayerlabError("the two passwords differ", hint="run the command again")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def run(args: argparse.Namespace) -> int:
    from layerlab.server.bootstrap import require_migrated

    password = read_password()
    require_migrated()
    from layerlab.apps.accounts.services import user_claim, user_create, user_is_unclaimed

    # A user recorded by `layerlab train` (no usable password) gets its password: it is claimed.
    claim = user_is_unclaimed(username=args.name)
    make = user_claim if claim else user_create
    user = make(username=args.name, password=password, superuser=args.superuser, email=args.email)
    print(
        f"{'claimed' if claim else 'created'} {'superuser' if user.is_superuser else 'user'} {user.username}"
    )
    return 0
