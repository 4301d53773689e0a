"""Which rank a failed group's one error line names (``train.launch.root_failure``)."""

from __future__ import annotations

import signal
from types import SimpleNamespace

from layerlab.train.launch import root_failure


def failures(**by_rank):
    exc = SimpleNamespace(
        failures={int(r[1:]): SimpleNamespace(exitcode=c, timestamp=t) for r, (c, t) in by_rank.items()}
    )
    exc.get_first_failure = lambda: min(exc.failures.items(), key=lambda item: item[1].timestamp)
    return exc


def test_the_killed_rank_is_named_not_the_one_that_stopped_because_of_it():
    # seen in the same poll (the same time): the lowest rank, which only stopped, would win the tie
    rank, failure = root_failure(failures(r0=(128 + signal.SIGTERM, 5), r1=(-signal.SIGKILL, 5)))
    assert (rank, failure.exitcode) == (1, -signal.SIGKILL)


def test_the_first_cause_wins_and_stopped_ranks_count_when_nothing_else_failed():
    rank, _ = root_failure(failures(r0=(3, 7), r1=(-signal.SIGKILL, 6), r2=(-signal.SIGTERM, 1)))
    assert rank == 1
    rank, _ = root_failure(failures(r0=(-signal.SIGTERM, 4), r1=(128 + signal.SIGTERM, 2)))
    assert rank == 1
