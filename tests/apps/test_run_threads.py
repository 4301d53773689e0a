"""A worker's run without train.num_threads trains with its share of the host's cores (recorded in its summary)."""

from __future__ import annotations

import pytest
import torch

from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.services import run_create
from layerlab.train import threads

pytestmark = pytest.mark.django_db(transaction=True)

TINY = {
    "model": {"preset": "mlp"},
    "data": {"source": "spiral", "points_per_class": 30},
    "train": {"epochs": 1},
}


@pytest.fixture
def two_cores(monkeypatch, settings):
    """A host with 2 usable cores, torch's threads put back afterwards."""
    monkeypatch.setattr(threads, "usable_cores", lambda: 2)
    settings.LAYERLAB_TRAIN_THREADS = 0
    settings.LAYERLAB_CONCURRENT_TRAININGS = 0
    before = torch.get_num_threads()
    yield settings
    torch.set_num_threads(before)


def execute(people, config):
    run = run_create(project=people["project"], user=people["owner"], config=config)
    assert execution.run_execute(run_id=run.id) == Run.Status.SUCCEEDED
    run.refresh_from_db()
    assert run.config["train"].get("num_threads") == config["train"].get("num_threads")  # no made-up value
    return run.summary["num_threads"]


def test_a_worker_of_two_on_two_cores_trains_with_one_thread(people, two_cores):
    two_cores.LAYERLAB_CONCURRENT_TRAININGS = 2  # serve --workers 2 / worker --concurrency 2
    torch.set_num_threads(2)
    assert execute(people, TINY) == 1


def test_alone_it_takes_every_core_and_the_config_or_the_setting_wins(people, two_cores):
    torch.set_num_threads(1)
    assert execute(people, TINY) == 2
    two_cores.LAYERLAB_CONCURRENT_TRAININGS = 2
    assert execute(people, {**TINY, "train": {"epochs": 1, "num_threads": 2}}) == 2
    two_cores.LAYERLAB_TRAIN_THREADS = 2
    assert execute(people, TINY) == 2


def test_runs_running_on_this_host_count_as_concurrent(people, two_cores):
    here = f"{execution.socket.gethostname()}:1"
    for _ in range(2):  # another run and this one (claimed: running here too)
        run = run_create(project=people["project"], user=people["owner"], config=TINY)
        Run.objects.filter(id=run.id).update(status=Run.Status.RUNNING, worker=here)
    assert execution.train_threads() == 1
    Run.objects.filter(id=run.id).update(worker="elsewhere:1")
    assert execution.train_threads() == 2
