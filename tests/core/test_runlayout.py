"""The run directory's names, in one torch-free module."""

import subprocess
import sys

from layerlab.core import runlayout


def test_checkpoint_names_and_kinds():
    assert runlayout.numbered_name(7) == "epoch-0007.ckpt"
    assert runlayout.numbered_epoch("epoch-0007.ckpt") == 7 and runlayout.numbered_epoch("x.ckpt") is None
    assert runlayout.checkpoint_kind("runs/3/checkpoints/best.ckpt") == "best"
    assert runlayout.checkpoint_kind(runlayout.LAST) == "last"
    assert runlayout.checkpoint_kind(runlayout.numbered_name(12)) == "numbered"
    assert runlayout.checkpoint_kind("summary.json") is None


def test_run_dir_of_a_checkpoint_and_has_checkpoints(tmp_path):
    assert runlayout.run_dir_of_checkpoint(tmp_path / "checkpoints" / "best.ckpt") == tmp_path
    assert runlayout.run_dir_of_checkpoint(tmp_path / "model.ckpt") == tmp_path
    assert not runlayout.has_checkpoints(tmp_path)
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / runlayout.LAST).write_bytes(b"x")
    assert runlayout.has_checkpoints(tmp_path)


def test_importing_it_pulls_no_torch():
    code = "import sys, layerlab.core.runlayout; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
