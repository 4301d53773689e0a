"""``layerlab serve``: migrate, then a production web server (gunicorn) plus N worker processes.

Ctrl-C (or SIGTERM) stops everything it started. A worker that dies is started again; on start it
re-queues the runs its predecessor left behind, which resume from their last checkpoint.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time

STOP_GRACE_SECONDS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="embedded worker processes (default 1; 0 for none)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--no-migrate", action="store_true", help="do not migrate the database on start")


def access_log_path() -> str:
    """The web server's access log: a file under LAYERLAB_HOME (the terminal keeps errors and notices)."""
    from django.conf import settings

    logs = settings.LAYERLAB_HOME / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    return str(logs / "access.log")


def web_command(args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "layerlab.server.wsgi:application",
        "--bind", f"{args.host}:{args.port}",
        "--workers", str(args.web_workers),
        "--timeout", "120",
        "--graceful-timeout", "5",
        "--access-logfile", access_log_path(),
        # Unused, and its default path (~/.gunicorn) is outside LAYERLAB_HOME and shared by every lab.
        "--no-control-socket",
    ]  # fmt: skip


def worker_command() -> list[str]:
    return [sys.executable, "-m", "layerlab.cli.main", "worker"]


def stop_all(processes: list[subprocess.Popen]) -> None:
    """SIGTERM everything; a second SIGTERM a moment later; after a grace period SIGKILL what is left.

    A worker busy training takes the first SIGTERM as "stop after this job", which may be hours
    away; the second one makes it exit at once. Its run stays ``running`` and the next worker
    resumes it from its last checkpoint, as after a crash.
    """
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    soon, deadline = time.monotonic() + 1, time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, soon - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def announce_initial_admin() -> None:
    """On an empty lab, create the first administrator and say how to sign in."""
    from django.conf import settings

    from layerlab.apps.accounts.initial import initial_admin_ensure

    created = initial_admin_ensure(home=settings.LAYERLAB_HOME)
    if created:
        password, path = created
        print(
            f"first start: created the administrator 'admin' with password {password} (also in {path}); "
            "add people with `layerlab createuser NAME` or in /admin/",
            flush=True,
        )


def raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args: argparse.Namespace) -> int:
    from layerlab.core.errors import ConfigError

    if args.workers < 0 or args.web_workers < 1:
        raise ConfigError("--workers must be >= 0 and --web-workers >= 1", where="serve")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "layerlab.server.settings")
    if not args.no_migrate:
        from layerlab.server.bootstrap import migrate_database

        migrate_database(verbosity=0)
        announce_initial_admin()
    # Both, explicitly: a shell starting us in the background may have set SIGINT to ignore.
    signal.signal(signal.SIGTERM, raise_interrupt)
    signal.signal(signal.SIGINT, raise_interrupt)
    # Children get sessions of their own: a terminal's Ctrl-C reaches only this process, which
    # then stops them in order (a second signal while a worker shuts down would end it with a traceback).
    web = subprocess.Popen(web_command(args), start_new_session=True)
    workers = [subprocess.Popen(worker_command(), start_new_session=True) for _ in range(args.workers)]
    started = [time.monotonic()] * len(workers)
    delays = [0.0] * len(workers)
    print(
        f"layerlab serving on http://{args.host}:{args.port}/ (dashboard; API at /api/) "
        f"with {args.workers} worker(s); Ctrl-C stops",
        flush=True,
    )
    try:
        while True:
            time.sleep(0.5)
            if web.poll() is not None:
                print(f"error: the web server exited with code {web.returncode}", file=sys.stderr)
                return 1
            now = time.monotonic()
            for index, worker in enumerate(workers):
                if worker.poll() is None or now < started[index] + delays[index]:
                    continue
                # A worker that dies right after starting is restarted more and more slowly (up to 30 s).
                quick = now - started[index] < 10 + delays[index]
                delays[index] = min(30.0, max(1.0, 2 * delays[index])) if quick else 0.0
                print(
                    f"worker {worker.pid} exited with code {worker.returncode}; starting another",
                    file=sys.stderr,
                )
                workers[index] = subprocess.Popen(worker_command(), start_new_session=True)
                started[index] = now
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all([web, *workers])
