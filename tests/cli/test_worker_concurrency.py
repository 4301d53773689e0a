"""``serve --workers N`` tells each worker it is one of N trainings; ``worker --concurrency N`` records it."""

from __future__ import annotations

import pytest

from layerlab.cli.commands import serve
from layerlab.cli.main import main


def test_serve_starts_each_worker_as_one_of_its_workers():
    command = serve.worker_command(2)
    assert command[-3:] == ["worker", "--concurrency", "2"]


@pytest.mark.django_db
def test_worker_concurrency_sets_this_hosts_trainings(settings, monkeypatch):
    from layerlab.server import bootstrap

    seen = {}
    monkeypatch.setattr(bootstrap, "management", lambda name, **options: seen.update(name=name))
    settings.LAYERLAB_CONCURRENT_TRAININGS = 0
    assert main(["worker", "--batch", "--concurrency", "2"]) == 0
    assert seen["name"] == "db_worker" and settings.LAYERLAB_CONCURRENT_TRAININGS == 2
    settings.LAYERLAB_CONCURRENT_TRAININGS = 3  # the environment says more trainings run here: it wins
    assert main(["worker", "--batch", "--concurrency", "2"]) == 0
    assert settings.LAYERLAB_CONCURRENT_TRAININGS == 3


def test_worker_concurrency_below_one_is_one_clear_line(capsys):
    assert main(["worker", "--concurrency", "0"]) != 0
    err = capsys.readouterr().err
    assert "--concurrency must be at least 1" in err and "Traceback" not in err


@pytest.mark.django_db
def test_a_worker_outlasts_a_database_locked_past_its_busy_timeout(monkeypatch, caplog):
    """A frozen lock holder made django-tasks-db's claim fail at ``BEGIN``: the worker polls again."""
    from django.db import OperationalError

    from layerlab.server import bootstrap

    polls = []

    def db_worker(name, **options):
        polls.append(name)
        if len(polls) < 3:
            raise OperationalError("database is locked")

    monkeypatch.setattr(bootstrap, "management", db_worker)
    assert main(["worker", "--batch"]) == 0
    assert polls == ["db_worker"] * 3
    assert "stayed locked past its busy timeout" in caplog.text


@pytest.mark.django_db
def test_a_worker_still_stops_on_other_database_errors(monkeypatch):
    from django.db import OperationalError

    from layerlab.cli.commands.worker import poll_surviving_locks

    def broken():
        raise OperationalError("no such table: django_tasks_database_dbtaskresult")

    with pytest.raises(OperationalError, match="no such table"):
        poll_surviving_locks(broken)
