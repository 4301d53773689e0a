"""train.curriculum.score in the lab: a scoring run by reference (checked like init_from), never a server file."""

from __future__ import annotations

from pathlib import Path

import pytest

from layerlab.apps.projects.services import project_create
from layerlab.apps.runs import execution
from layerlab.apps.runs.models import Checkpoint, Run
from layerlab.apps.runs.services import run_create
from layerlab.core.errors import ConfigError

pytestmark = pytest.mark.django_db


@pytest.fixture
def teacher(people, lab_home):
    """A succeeded run of the shared project with a best checkpoint."""
    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    best = Path(run.run_dir) / "checkpoints" / "best.ckpt"
    best.parent.mkdir(parents=True)
    best.write_bytes(b"weights")
    Checkpoint.objects.create(run=run, epoch=1, path=str(best))
    Run.objects.filter(id=run.id).update(status=Run.Status.SUCCEEDED)
    run.refresh_from_db()
    return run


def curriculum(score):
    return {"train": {"epochs": 1, "curriculum": {"score": score}}}


def test_a_score_file_or_run_directory_on_the_server_is_refused(people, teacher, tmp_path):
    scores = tmp_path / "scores.npy"
    scores.write_bytes(b"x")
    with pytest.raises(
        ConfigError, match="train.curriculum.score.array: a score file is a path on the server"
    ):
        run_create(
            project=people["project"], user=people["editor"], config=curriculum({"array": str(scores)})
        )
    with pytest.raises(ConfigError) as caught:
        run_create(
            project=people["project"], user=people["editor"], config=curriculum({"run": teacher.run_dir})
        )
    assert (
        caught.value.where == "train.curriculum.score.run" and teacher.run_dir not in caught.value.one_line()
    )


def test_a_scoring_run_you_cannot_see_reads_like_a_missing_one(people, teacher):
    mine = project_create(owner=people["stranger"], name="mine")
    answers = []
    for value in (f"run:{teacher.id}", "run:999999"):
        with pytest.raises(ConfigError) as caught:
            run_create(project=mine, user=people["stranger"], config=curriculum({"run": value}))
        answers.append(caught.value.message.replace(str(teacher.id), "N").replace("999999", "N"))
    assert len(set(answers)) == 1


def test_a_visible_scoring_run_is_resolved_to_its_checkpoint_on_the_worker(people, teacher, monkeypatch):
    child = run_create(
        project=people["project"], user=people["viewer"], config=curriculum({"run": f"run:{teacher.id}"})
    )
    assert child.config["train"]["curriculum"]["score"]["run"] == f"run:{teacher.id}"
    seen = []
    monkeypatch.setattr(
        execution,
        "train_experiment",
        lambda cfg, *a, **k: seen.append(cfg.train.curriculum.score.run) or {"epochs": 1},
    )
    execution.run_execute(run_id=child.id)
    assert seen and Path(seen[0]).read_bytes() == b"weights"
