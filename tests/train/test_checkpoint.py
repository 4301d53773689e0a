"""Checkpoint files: atomic writes, corrupt files named, newest valid one found."""

import pytest
import torch

from layerlab.core.errors import CheckpointError
from layerlab.train.checkpoint import (
    checkpoint_load,
    checkpoint_save,
    latest_checkpoint,
    load_latest_valid,
    prune_numbered,
    remove_partial_writes,
)


def state(epoch):
    return {"epoch": epoch, "model": {"w": torch.full((2,), float(epoch))}, "network": {}, "classes": ["a"]}


def test_save_and_load_round_trip_leaves_no_temp_files(tmp_path):
    path = checkpoint_save(tmp_path / "checkpoints" / "epoch-0001.ckpt", state(1))
    loaded = checkpoint_load(path)
    assert loaded["epoch"] == 1 and torch.equal(loaded["model"]["w"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["epoch-0001.ckpt"]


def test_corrupt_checkpoint_is_named(tmp_path):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="bad.ckpt' is corrupt") as exc:
        checkpoint_load(path)
    assert "PyTorch" not in str(exc.value) and "garbled" in str(exc.value)  # words, not torch's API notes


def test_truncated_checkpoint_says_so(tmp_path):
    whole = checkpoint_save(tmp_path / "whole.ckpt", state(1)).read_bytes()
    (tmp_path / "cut.ckpt").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(CheckpointError, match=r"cut.ckpt' is corrupt \(truncated or garbled"):
        checkpoint_load(tmp_path / "cut.ckpt")


def test_missing_checkpoint_is_a_checkpoint_error(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        checkpoint_load(tmp_path / "nope.ckpt")


def test_latest_valid_skips_a_corrupt_newest_one_with_a_warning(tmp_path):
    folder = tmp_path / "checkpoints"
    checkpoint_save(folder / "epoch-0001.ckpt", state(1))
    checkpoint_save(folder / "epoch-0002.ckpt", state(2))
    (folder / "last.ckpt").write_bytes(b"\x80garbage")
    assert latest_checkpoint(tmp_path).name == "last.ckpt"
    path, loaded, warnings = load_latest_valid(tmp_path)
    assert path.name == "epoch-0002.ckpt" and loaded["epoch"] == 2
    assert len(warnings) == 1 and "last.ckpt" in warnings[0]


def test_resume_without_checkpoints_says_how_to_fix(tmp_path):
    with pytest.raises(CheckpointError, match="holds no checkpoint.*layerlab train"):
        load_latest_valid(tmp_path)


def test_prune_keeps_the_newest(tmp_path):
    for e in range(1, 5):
        checkpoint_save(tmp_path / "checkpoints" / f"epoch-{e:04d}.ckpt", state(e))
    prune_numbered(tmp_path, 2)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "epoch-0003.ckpt",
        "epoch-0004.ckpt",
    ]


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.5, 0.9])
def test_a_truncated_checkpoint_says_so_and_names_the_one_to_use(tmp_path, fraction):
    folder = tmp_path / "checkpoints"
    checkpoint_save(folder / "epoch-0001.ckpt", state(1))
    data = checkpoint_save(folder / "epoch-0002.ckpt", state(2)).read_bytes()
    (folder / "last.ckpt").write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match="last.ckpt' is corrupt \\(truncated") as exc:
        checkpoint_load(folder / "last.ckpt")
    assert "Errno" not in str(exc.value) and "use checkpoints/epoch-0002.ckpt instead" in str(exc.value)


def test_a_whole_best_checkpoint_newer_than_the_others_is_resumed_from(tmp_path):
    folder = tmp_path / "checkpoints"
    checkpoint_save(folder / "epoch-0002.ckpt", state(2))
    checkpoint_save(folder / "best.ckpt", state(4))  # written first at epoch 4; the kill cut the rest
    (folder / "epoch-0004.ckpt").write_bytes(b"torn")
    path, loaded, skipped = load_latest_valid(tmp_path)
    assert path.name == "best.ckpt" and loaded["epoch"] == 4 and len(skipped) == 1
    checkpoint_save(folder / "best.ckpt", state(1))  # an older best loses to a newer numbered one
    assert load_latest_valid(tmp_path)[0].name == "epoch-0002.ckpt"


def test_partial_writes_are_removed(tmp_path):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.ckpt.x1y2.tmp").write_bytes(b"half")
    (tmp_path / ".summary.json.abc.tmp").write_text("{")
    (tmp_path / "notes.tmp").write_text("mine")  # not one of ours (no leading dot)
    assert sorted(remove_partial_writes(tmp_path)) == [".last.ckpt.x1y2.tmp", ".summary.json.abc.tmp"]
    assert [p.name for p in tmp_path.rglob("*.tmp")] == ["notes.tmp"]
