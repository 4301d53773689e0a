"""``layerlab serve-model``: what RUN may name (a directory, a checkpoint, a lab run ID) and its flag checks."""

from __future__ import annotations

import pytest
import torch

from layerlab.cli.commands.serve_model import resolve_run
from layerlab.cli.main import main
from layerlab.core.errors import LayerlabError


@pytest.mark.django_db(transaction=True)
def test_a_run_id_of_the_local_lab_names_its_checkpoint(people):
    from layerlab.apps.runs.execution import run_execute
    from layerlab.apps.runs.services import run_create

    torch.set_num_threads(1)
    run = run_create(
        project=people["project"],
        user=people["owner"],
        config={"model": {"preset": "mlp"}, "train": {"epochs": 1, "num_threads": 1}},
    )
    assert run_execute(run_id=run.id) == "succeeded"
    path, name = resolve_run(str(run.id))
    assert path.suffix == ".ckpt" and path.is_file() and name == f"run {run.id}"
    with pytest.raises(LayerlabError, match="does not exist"):
        resolve_run("999999")


def test_a_path_is_taken_as_given(tmp_path):
    assert resolve_run(str(tmp_path)) == (tmp_path, tmp_path.name)


def test_bad_flags_are_one_line_errors(tmp_path, capsys):
    assert main(["serve-model", str(tmp_path), "--max-batch", "0"]) != 0
    assert "--max-batch" in capsys.readouterr().err
