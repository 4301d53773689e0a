"""``layerlab serve``: migrate, then a production web server (gunicorn) plus N worker processes.

Ctrl-C (or SIGTERM) stops everything it started. The web server or a worker that dies is started
again (after a growing delay when it dies right after starting); a worker on start re-queues the runs
its predecessor left behind, which resume from their last checkpoint. When one of them keeps dying
(``RESTART_LIMIT`` exits within ``RESTART_WINDOW`` seconds) serve stops everything and exits 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

STOP_GRACE_SECONDS = 10
WEB_THREADS = 4  # request threads per gunicorn web worker (gthread)
RESTART_LIMIT = 5  # exits of one process within RESTART_WINDOW seconds that make serve give up
RESTART_WINDOW = 60.0
MAX_RESTART_DELAY = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument(
        "--workers", type=int, default=1, help="embedded worker processes (default 1; 0 for none)"
    )
    parser.add_argument("--web-workers", type=int, default=2, help="gunicorn worker processes (default 2)")
    parser.add_argument("--no-migrate", action="store_true", help="do not migrate the database on start")
    parser.add_argument(
        "--luigid",
        nargs="?",
        type=int,
        const=8082,
        default=None,
        metavar="PORT",
        help="also start Luigi's central scheduler for pipelines (default port 8082)",
    )


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
        # Threaded workers keep a client's connection open between requests (the sync worker closes
        # every one): a script logging metric batches pays no TCP setup per batch.
        "--threads", str(WEB_THREADS), "--keep-alive", "5",
        "--timeout", "120",
        "--graceful-timeout", "5",
        "--access-logfile", access_log_path(),
        # Unused, and its default path (~/.gunicorn) is outside LAYERLAB_HOME and shared by every lab.
        "--no-control-socket",
    ]  # fmt: skip


def worker_command(concurrency: int = 1) -> list[str]:
    """A worker of a lab with ``concurrency`` workers: each run gets its share of the cores."""
    return [sys.executable, "-m", "layerlab.cli.main", "worker", "--concurrency", str(max(1, concurrency))]


def luigid_command_for(args: argparse.Namespace) -> list[str]:
    """luigid beside the lab, on the lab's host, its state kept under LAYERLAB_HOME."""
    from django.conf import settings

    from layerlab.pipelines.scheduler import luigid_command
    from layerlab.server.bootstrap import django_setup

    django_setup()
    return luigid_command(
        host=args.host, port=args.luigid, state_path=Path(settings.LAYERLAB_HOME) / "luigi-state.pickle"
    )


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


class GiveUp(Exception):  # noqa: N818 (serve's reason to stop, shown as one line)
    pass


class Supervised:
    """One process serve keeps alive: restarted when it exits, after a delay that doubles (up to
    ``MAX_RESTART_DELAY``) while it keeps dying within 10 s of starting; ``GiveUp`` after
    ``RESTART_LIMIT`` exits within ``RESTART_WINDOW`` seconds.

    Args:
        name: how messages call it (``web server``, ``worker 2``).
        command: its command line; it runs in a session of its own.
        now: the ``time.monotonic()`` it starts at.
    """

    def __init__(self, name: str, command: list[str], now: float | None = None):
        self.name = name
        self.command = command
        self.exits: deque[float] = deque()
        self.delay = 0.0
        self.due: float | None = None  # when a dead process is started again
        self.start(time.monotonic() if now is None else now)

    def start(self, now: float) -> None:
        self.process = subprocess.Popen(self.command, start_new_session=True)
        self.started, self.due = now, None

    def check(self, now: float) -> None:
        """Notice an exit (and say why), restart when due; ``GiveUp`` when it keeps exiting."""
        if self.due is None:
            code = self.process.poll()
            if code is None:
                return
            reap_group(self.process)  # gunicorn's workers outlive a killed master, holding the port
            self.exits.append(now)
            while self.exits and self.exits[0] < now - RESTART_WINDOW:
                self.exits.popleft()
            why = f"{self.name} (pid {self.process.pid}) exited with {exit_words(code)}"
            if len(self.exits) >= RESTART_LIMIT:
                raise GiveUp(
                    f"{why}: {len(self.exits)} exits within {RESTART_WINDOW:.0f} s, giving up; "
                    "see its messages above"
                )
            quick = now - self.started < 10 + self.delay
            self.delay = min(MAX_RESTART_DELAY, max(1.0, 2 * self.delay)) if quick else 0.0
            print(f"{why}; starting it again in {self.delay:.0f} s", file=sys.stderr, flush=True)
            self.due = now + self.delay
        if now >= self.due:
            self.start(now)


def exit_words(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def reap_group(process: subprocess.Popen) -> None:
    """Kill what is left of a dead child's session (its own process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens on ``host:port`` (so gunicorn would fail at every restart)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError:
        return False  # a host gunicorn will name in its own error
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind(address)
        except OSError:
            return True
    return False


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
    if port_in_use(args.host, args.port):
        raise ConfigError(
            f"port {args.port} on {args.host} is already in use",
            hint="stop what listens there (another lab?) or choose another --port",
            where="--port",
        )
    luigid_port = getattr(args, "luigid", None)
    if luigid_port is not None and port_in_use(args.host, luigid_port):
        raise ConfigError(
            f"port {luigid_port} on {args.host} is already in use",
            hint="stop what listens there (another luigid?) or give --luigid another port",
            where="--luigid",
        )
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
    children = [Supervised("the web server", web_command(args))]
    children += [Supervised(f"worker {i + 1}", worker_command(args.workers)) for i in range(args.workers)]
    if luigid_port is not None:
        children.append(Supervised("the Luigi scheduler", luigid_command_for(args)))
    print(
        f"layerlab serving on http://{args.host}:{args.port}/ (dashboard; API at /api/) "
        f"with {args.workers} worker(s)"
        + (f", Luigi scheduler on http://{args.host}:{args.luigid}/" if luigid_port is not None else "")
        + "; Ctrl-C stops",
        flush=True,
    )
    try:
        while True:
            time.sleep(0.5)
            for child in children:
                child.check(time.monotonic())
    except KeyboardInterrupt:
        print("stopping", file=sys.stderr, flush=True)
        return 0
    except GiveUp as exc:
        print(f"error: {exc}; stopping the lab", file=sys.stderr, flush=True)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second signal must not cut the cleanup short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        stop_all([child.process for child in children])
