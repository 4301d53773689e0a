"""``layerlab worker``: run queued jobs (training runs); recovers runs whose worker died, at start and then periodically."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between polls of an empty queue")
    parser.add_argument("--max-tasks", type=int, default=None, help="exit after this many jobs")
    parser.add_argument("--batch", action="store_true", help="run what is queued, then exit")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="trainings this host runs at once (workers of a lab here); each run gets the usable cores "
        "divided by it unless its config sets train.num_threads (default: LAYERLAB_CONCURRENT_TRAININGS, "
        "at least the runs running on this host)",
    )


def run(args: argparse.Namespace) -> int:
    from layerlab.core.errors import ConfigError
    from layerlab.server.bootstrap import management, require_migrated

    if args.concurrency is not None and args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1", where="worker")
    require_migrated()
    import logging

    from django.conf import settings

    if args.concurrency:  # the larger of what this host's lab says (serve --workers) and the environment
        settings.LAYERLAB_CONCURRENT_TRAININGS = max(settings.LAYERLAB_CONCURRENT_TRAININGS, args.concurrency)

    from layerlab.apps.runs.recovery import RecoveryWatch, runs_recover_orphans

    recovered = runs_recover_orphans()
    if recovered:
        logging.getLogger("layerlab.runs").warning("re-queued runs whose worker died: %s", recovered)
    if not args.batch:
        RecoveryWatch(every=max(5.0, settings.LAYERLAB_STALE_SECONDS / 2)).start()
    options = {"queue_name": "default", "interval": args.interval, "reload": False, "batch": args.batch}
    if args.max_tasks:
        options["max_tasks"] = args.max_tasks
    poll_surviving_locks(lambda: management("db_worker", **options))
    return 0


def poll_surviving_locks(poll) -> None:
    """Run the job loop ``poll``; when the database stays locked past its busy timeout, say so and poll again.

    On SQLite one write lock serves the whole lab: a worker frozen inside a write transaction (SIGSTOP, a
    debugger, a machine put to sleep) holds it until it wakes. django-tasks-db's loop gives up on the
    ``BEGIN`` of its claim and would end the worker; this worker waits it out instead.
    """
    import logging

    from django.db import OperationalError, connections
    from django_tasks_db.utils import is_locked_database_exception

    log = logging.getLogger("layerlab.runs")
    while True:
        try:
            poll()
            return
        except OperationalError as exc:
            if not is_locked_database_exception(exc):
                raise
            log.warning(
                "the lab database stayed locked past its busy timeout (another process holds a write "
                "transaction: a paused or stuck worker?); polling again"
            )
            connections.close_all()
