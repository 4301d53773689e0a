"""The run page of a clip-counting run: the network's test accuracy beside the peak-count baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest
from django.conf import settings
from django.utils import timezone

from layerlab.apps.runs.frames import run_frames, run_frames_callbacks, run_is_frames
from layerlab.apps.runs.models import Run
from layerlab.core import runlayout
from layerlab.inference.frames import BaselineResult
from layerlab.inference.frames_report import FramesReport, asks_for_frames, write_report
from layerlab.train.config import experiment_from_mapping

pytestmark = pytest.mark.django_db

CONFIG = {
    "data": {"source": "repetition-counting", "video": {"frames": 8, "size": 8, "max_count": 2}},
    "model": {
        "layers": [
            {"kind": "timedistributed", "name": "frames", "layers": [
                {"kind": "conv2d", "name": "conv1", "out": 3, "kernel": 3},
                {"kind": "flatten"}, {"kind": "linear", "name": "embed", "out": 4},
            ]},
            {"kind": "lstm", "hidden": 5},
            {"kind": "linear", "out": "classes"},
        ]
    },
}  # fmt: skip
CHOSEN = BaselineResult(
    layer="frames.embed", channel=3, position=None, prominence=0.4, turns=True, train_accuracy=0.97,
    test_accuracy=0.964, train_examples=256, test_examples=120, chance=0.25,
)  # fmt: skip
UNTRAINED = BaselineResult(**{**CHOSEN.to_dict(), "channel": 1, "test_accuracy": 0.753, "turns": False})
REPORT = {
    "task": "frames", "network_test_accuracy": 0.925, "baseline": CHOSEN.to_dict(),
    "untrained_baseline": UNTRAINED.to_dict(), "chance": 0.25,
    "clips": {"train": {"used": 256, "of": 390}, "test": {"used": 120, "of": 120}}, "max_clips": 256,
}  # fmt: skip


@pytest.fixture
def signed_in(people):
    from django.test import Client

    def make(name: str):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(people[name])
        return browser

    return make


@pytest.fixture
def counting_run(people):
    run = Run.objects.create(
        project=people["project"], name="count", status=Run.Status.SUCCEEDED,
        config=experiment_from_mapping(CONFIG).to_dict(), created_by=people["owner"], finished_at=timezone.now(),
    )  # fmt: skip
    run_dir = settings.LAYERLAB_RUNS_DIR / str(run.id)
    run_dir.mkdir(parents=True)
    traces = {"values": np.random.default_rng(0).random((2, 8)), "truth": np.array([1, 2]), "result": CHOSEN}
    write_report(run_dir, REPORT, traces)
    return run


def test_the_run_page_shows_both_accuracies_and_the_traces_to_viewers_only(signed_in, counting_run):
    page = signed_in("viewer").get(f"/runs/{counting_run.id}/").content.decode()
    assert "the network beside the peak-count baseline" in page
    assert "92.5%" in page and "96.4%" in page and "75.3%" in page and "25.0%" in page
    assert "frames.embed channel 3, band 0.4, turns" in page and "256 of 390 train clips" in page
    assert 'src="data:image/png;base64,' in page
    assert signed_in("stranger").get(f"/runs/{counting_run.id}/").status_code == 404


def test_a_run_without_a_report_or_of_another_kind_has_no_section(counting_run):
    from layerlab.apps.runs.execution import run_extra_callbacks

    run_dir = settings.LAYERLAB_RUNS_DIR / str(counting_run.id)
    (run_dir / runlayout.FRAMES_REPORT).write_text("[1]")
    assert run_frames(counting_run) is None  # not a report: nothing shown, no error
    (run_dir / runlayout.FRAMES_REPORT).write_text(json.dumps(REPORT))
    (run_dir / runlayout.FRAMES_TRACES).unlink()
    shown = run_frames(counting_run)
    assert shown["baseline"]["test_accuracy"] == "96.4%" and shown["traces"] is None
    # registered when the runs app is ready: the worker's training writes the report
    assert any(isinstance(cb, FramesReport) for cb in run_extra_callbacks(counting_run))
    assert len(run_frames_callbacks(counting_run)) == 1
    counting_run.config = {**counting_run.config, "model": {"preset": "mlp"}}
    assert run_frames(counting_run) is None and run_frames_callbacks(counting_run) == []


@pytest.mark.parametrize(
    "config",
    [CONFIG, {**CONFIG, "train": {"task": "regression"}}, {"model": {"preset": "mlp"}}, {"model": []}, {}],
)
def test_the_page_and_the_engine_agree_on_which_runs_count(config):
    assert run_is_frames(Run(config=config)) == asks_for_frames(config)


def test_rank_0_of_a_group_run_writes_the_reports_and_the_other_ranks_none(counting_run, monkeypatch):
    from layerlab.apps.runs import execution
    from layerlab.apps.runs.group import rank_callbacks
    from layerlab.apps.runs.recorder import RunRecorder

    class Pruner:  # a sweep's pruner runs on rank 0 too; its verdict goes back in the outcome
        pruned = False

    monkeypatch.setattr(
        execution, "run_callback_factories", [*execution.run_callback_factories, lambda run: [Pruner()]]
    )
    recorder = RunRecorder(counting_run.id)
    callbacks = rank_callbacks(recorder)
    assert callbacks[0] is recorder and sum(isinstance(cb, FramesReport) for cb in callbacks) == 1
    assert sum(isinstance(cb, Pruner) for cb in callbacks) == 1
    assert rank_callbacks(None) == []
