"""Starting Django from the command line: settings module, setup, management commands."""

from __future__ import annotations

import os


def django_setup() -> None:
    """Configure Django with the lab's settings (idempotent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "layerlab.server.settings")
    import django

    django.setup()


def management(name: str, *args, **options) -> None:
    """Run a Django management command (``migrate``, ``db_worker`` ...) in this process."""
    django_setup()
    from django.core.management import call_command

    call_command(name, *args, **options)


def require_migrated() -> None:
    """One clear line instead of 'no such table' when the database was never migrated."""
    django_setup()
    from django.db import OperationalError, connection
    from django.db.migrations.executor import MigrationExecutor

    from layerlab.core.errors import LayerlabError

    try:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    except OperationalError as exc:
        raise LayerlabError(
            f"cannot reach the lab database: {str(exc).strip().splitlines()[0]}",
            hint="check DATABASE_URL and that the database server is running",
        ) from None
    if pending:
        raise LayerlabError(
            f"the lab database ({connection.settings_dict['NAME']}) is not set up or not up to date",
            hint="run: layerlab migrate",
        )


def migrate_database(*, verbosity: int = 1) -> None:
    """``migrate``, with an unreachable database as one clear line."""
    from django.db import OperationalError

    from layerlab.core.errors import LayerlabError

    try:
        management("migrate", interactive=False, verbosity=verbosity)
    except OperationalError as exc:
        raise LayerlabError(
            f"cannot migrate the lab database: {str(exc).strip().splitlines()[0]}",
            hint="check DATABASE_URL and that the database server is running",
        ) from None
