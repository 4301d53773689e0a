"""``train.launch.exit_process``: a torchrun rank leaves without the interpreter's teardown (where a
gloo process group kept alive by DDP can abort it), its output flushed; any other process exits as usual."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

SCRIPT = (
    "import atexit, sys\n"
    "from layerlab.train.launch import exit_process\n"
    "atexit.register(lambda: print('teardown', file=sys.stderr))\n"
    "print('summary', end='')\n"  # no newline: only an explicit flush writes it to a pipe
    "exit_process(3)\n"
)


@pytest.mark.parametrize("in_torchrun", [True, False])
def test_a_rank_skips_the_teardown_and_keeps_its_output_and_exit_code(in_torchrun):
    env = {k: v for k, v in os.environ.items() if k != "TORCHELASTIC_RUN_ID"}
    if in_torchrun:
        env["TORCHELASTIC_RUN_ID"] = "test"
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3 and done.stdout == "summary"
    assert ("teardown" in done.stderr) is not in_torchrun
