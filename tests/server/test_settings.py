"""The server's settings helpers: env parsing, database URLs, secret key generation."""

from __future__ import annotations

import pytest

from layerlab.core.errors import ConfigError
from layerlab.server.env import Env, database_config, secret_key


def test_postgres_url_is_parsed(tmp_path):
    cfg = database_config("postgres://pg:p%40ss@db.example:5433/lab", tmp_path)
    assert cfg["ENGINE"] == "django.db.backends.postgresql"
    assert (cfg["NAME"], cfg["USER"], cfg["PASSWORD"], cfg["HOST"], cfg["PORT"]) == (
        "lab",
        "pg",
        "p@ss",
        "db.example",
        "5433",
    )


def test_sqlite_default_uses_wal_and_a_busy_timeout(tmp_path):
    cfg = database_config("", tmp_path)
    assert cfg["NAME"] == str(tmp_path / "layerlab.sqlite3")
    assert "journal_mode=WAL" in cfg["OPTIONS"]["init_command"]
    assert cfg["OPTIONS"]["timeout"] >= 5


def test_unknown_database_scheme_is_one_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="not supported"):
        database_config("mysql://x/y", tmp_path)


def test_secret_key_is_generated_once_and_kept(tmp_path):
    env = Env({})
    first = secret_key(tmp_path, env)
    assert len(first) > 40
    assert secret_key(tmp_path, env) == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
    assert secret_key(tmp_path, Env({"LAYERLAB_SECRET_KEY": "given"})) == "given"


def test_env_getters():
    env = Env({"A": "yes", "B": "12", "C": "x, y", "D": "nope"})
    assert env.bool("A") is True and env.bool("missing", True) is True
    assert env.int("B", 1) == 12 and env.list("C", []) == ["x", "y"]
    with pytest.raises(ConfigError, match="whole number"):
        env.int("D", 0)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_seconds_and_counts_below_one_are_refused_by_name(value):
    with pytest.raises(ConfigError, match=f"LAYERLAB_STALE_SECONDS={value} must be at least 1"):
        Env({"LAYERLAB_STALE_SECONDS": value}).positive_int("LAYERLAB_STALE_SECONDS", 60)
    assert Env({}).positive_int("LAYERLAB_STALE_SECONDS", 60) == 60


def test_a_worker_beats_at_least_three_times_within_the_stale_window(tmp_path):
    """LAYERLAB_STALE_SECONDS=3 with the default 10 s heartbeat would take every live worker for dead."""
    import subprocess
    import sys

    code = (
        "from django.conf import settings; import django; django.setup(); "
        "print(settings.LAYERLAB_HEARTBEAT_SECONDS, settings.LAYERLAB_STALE_SECONDS)"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "LAYERLAB_HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "layerlab.server.settings",
        "LAYERLAB_STALE_SECONDS": "3",
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1.0", "3"]


def test_live_sqlite_connection_is_in_wal_mode(tmp_path):
    import sqlite3

    cfg = database_config("", tmp_path)
    con = sqlite3.connect(cfg["NAME"])
    con.executescript(cfg["OPTIONS"]["init_command"])
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_resource_limits_have_safe_defaults_and_are_read_from_the_environment(tmp_path, monkeypatch):
    import runpy

    import layerlab.server.settings as module

    monkeypatch.setenv("LAYERLAB_HOME", str(tmp_path))
    defaults = runpy.run_path(module.__file__)
    for name in ("MAX_UPLOAD_UNCOMPRESSED_BYTES", "MAX_IMAGE_PIXELS", "MAX_ARRAY_BYTES", "MAX_EPOCHS",
                 "MAX_PARAMETERS", "MAX_DATA_POINTS", "MAX_INPUT_PIXELS", "MAX_RUN_SECONDS", "API_MAX_PAGE_SIZE",
                 "LOGIN_FAILURES_PER_USER", "LOGIN_FAILURES_PER_IP", "LOGIN_WINDOW_SECONDS"):  # fmt: skip
        assert 0 < defaults[f"LAYERLAB_{name}"] < 10**12, name
    assert defaults["REST_FRAMEWORK"]["DEFAULT_PAGINATION_CLASS"].endswith("LabPagination")
    assert defaults["CACHES"]["login"]["LOCATION"] == str(tmp_path / "cache" / "login")
    monkeypatch.setenv("LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_MB", "2")
    monkeypatch.setenv("LAYERLAB_MAX_IMAGE_PIXELS", "1234")
    monkeypatch.setenv("LAYERLAB_MAX_EPOCHS", "7")
    changed = runpy.run_path(module.__file__)
    assert changed["LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES"] == 2 * 1024 * 1024
    assert (changed["LAYERLAB_MAX_IMAGE_PIXELS"], changed["LAYERLAB_MAX_EPOCHS"]) == (1234, 7)


def test_the_engine_decodes_with_the_settings_limits():
    from django.conf import settings

    from layerlab.data.limits import default_limits

    assert default_limits().max_image_pixels == settings.LAYERLAB_MAX_IMAGE_PIXELS
    assert default_limits().max_array_bytes == settings.LAYERLAB_MAX_ARRAY_BYTES
