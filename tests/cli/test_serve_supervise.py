"""``layerlab serve`` keeps its processes alive: a dead one is restarted after a bounded delay, and a
process that keeps dying makes serve give up with one clear line."""

from __future__ import annotations

import sys

import pytest

from layerlab.cli.commands import serve

DIES = [sys.executable, "-c", "raise SystemExit(3)"]


def test_a_process_that_keeps_dying_is_restarted_more_slowly_then_given_up_on(capsys):
    child = serve.Supervised("the web server", DIES, now=0.0)
    now, delays = 0.0, []
    with pytest.raises(serve.GiveUp, match=r"exited with code 3: 5 exits within 60 s, giving up"):
        for _ in range(10):
            child.process.wait()
            child.check(now)  # notices the exit
            delays.append(child.delay)
            now += child.delay
            child.check(now)  # starts it again when due
    assert delays == [1.0, 2.0, 4.0, 8.0]
    assert "the web server (pid" in capsys.readouterr().err


def test_a_process_that_ran_a_while_is_restarted_at_once_and_never_given_up_on():
    child = serve.Supervised("worker 1", DIES, now=0.0)
    now = 0.0
    for _ in range(8):
        child.process.wait()
        now += serve.RESTART_WINDOW  # one exit a minute: a long-running process, restarted
        child.check(now)
        assert child.delay == 0.0 and child.due is None  # started again at once
    child.process.wait()


def test_exit_words_name_the_signal():
    assert serve.exit_words(-9) == "signal SIGKILL" and serve.exit_words(2) == "code 2"


def test_a_port_in_use_is_one_clear_error_before_anything_starts():
    import argparse
    import socket

    from layerlab.core.errors import ConfigError

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = argparse.Namespace(host="127.0.0.1", port=port, workers=0, web_workers=1, no_migrate=True)
        with pytest.raises(ConfigError, match=f"port {port} on 127.0.0.1 is already in use"):
            serve.run(args)
    assert not serve.port_in_use("127.0.0.1", port)
