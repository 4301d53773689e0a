"""The one place the server reads its environment: typed getters with defaults."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import unquote, urlparse

from layerlab.core.errors import ConfigError


class Env:
    """Typed access to environment variables (``LAYERLAB_*``, ``DATABASE_URL``)."""

    def __init__(self, environ: dict[str, str] | None = None):
        self.environ = os.environ if environ is None else environ

    def str(self, name: str, default: str = "") -> str:
        return self.environ.get(name, default)

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.environ.get(name)
        if value is None or value == "":
            return default
        return value.strip().lower() in ("1", "true", "yes", "on")

    def int(self, name: str, default: int) -> int:
        value = self.environ.get(name)
        if value is None or value == "":
            return default
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{name}={value!r} is not a whole number", where="environment") from None

    def positive_int(self, name: str, default: int) -> int:
        """``int``, refusing zero and negative values (a count or a number of seconds)."""
        value = self.int(name, default)
        if value < 1:
            raise ConfigError(f"{name}={value} must be at least 1", where="environment")
        return value

    def list(self, name: str, default: list[str]) -> list[str]:
        value = self.environ.get(name)
        if not value:
            return default
        return [item.strip() for item in value.split(",") if item.strip()]

    def path(self, name: str, default: str) -> Path:
        return Path(self.environ.get(name) or default).expanduser().resolve()


def secret_key(home: Path, env: Env) -> str:
    """``LAYERLAB_SECRET_KEY``, else a key generated once into ``home/secret_key`` (mode 0600)."""
    given = env.str("LAYERLAB_SECRET_KEY")
    if given:
        return given
    path = home / "secret_key"
    if path.is_file():
        return path.read_text(encoding="utf-8").strip()
    home.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # O_EXCL: when two processes start at once, one writes and both read the same key.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return key


def database_config(url: str, home: Path) -> dict:
    """Django's ``DATABASES['default']`` from ``DATABASE_URL`` (postgres or sqlite); SQLite under home when empty."""
    if not url:
        return sqlite_config(home / "layerlab.sqlite3")
    parsed = urlparse(url)
    if parsed.scheme in ("postgres", "postgresql", "pgsql"):
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    if parsed.scheme == "sqlite":
        return sqlite_config(Path(unquote(parsed.path)))
    raise ConfigError(
        f"DATABASE_URL scheme '{parsed.scheme}' is not supported",
        hint="use postgres://user:password@host:port/name or sqlite:////absolute/path",
        where="environment",
    )


def sqlite_config(path: Path) -> dict:
    """SQLite in WAL mode with a busy timeout, so the web server and workers can write at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        # Kept open between requests of one web worker (thread): opening a connection and running
        # the PRAGMAs below was a large part of a small request (a 10-point metric batch).
        "CONN_MAX_AGE": 600,
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            "timeout": 30,
            # IMMEDIATE takes the write lock at BEGIN, so two writers wait (busy timeout)
            # instead of failing on a read-to-write lock upgrade.
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        },
    }
