"""``layerlab serve --luigid [PORT]``: the scheduler's command line, and its port checked before anything starts."""

from __future__ import annotations

import argparse
import socket

import pytest

from layerlab.cli.commands import serve
from layerlab.core.errors import ConfigError


def parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    serve.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_luigid_is_off_by_default_and_takes_an_optional_port():
    assert parsed().luigid is None
    assert parsed("--luigid").luigid == 8082
    assert parsed("--luigid", "9000").luigid == 9000


def test_luigid_runs_beside_the_lab_with_its_state_in_the_lab_home(settings, tmp_path):
    settings.LAYERLAB_HOME = tmp_path
    command = serve.luigid_command_for(parsed("--host", "0.0.0.0", "--luigid", "9000"))
    assert command[1:3] == ["-m", "layerlab.pipelines.scheduler"]
    assert command[3:] == [
        "--address",
        "0.0.0.0",
        "--port",
        "9000",
        "--state-path",
        str(tmp_path / "luigi-state.pickle"),
    ]


def test_a_luigid_port_in_use_is_one_clear_error_before_anything_starts():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            web_port = free.getsockname()[1]
        args = parsed("--port", str(web_port), "--workers", "0", "--no-migrate", "--luigid", str(port))
        with pytest.raises(ConfigError, match=f"--luigid: port {port} on 127.0.0.1 is already in use"):
            serve.run(args)
