"""Import + one epoch of an image folder 4x larger (as float32) than a memory cap stays under the cap.

The folder's float32 tensors would take 4 x CAP (its uint8 pixels 1 x CAP). A child process imports
it and trains one epoch; its peak resident memory (``VmHWM``: unlike ``ru_maxrss`` it is not floored at
the peak of a vforking parent) must stay under CAP above a
baseline child that runs the same code on a small folder of the same images (torch, the model, the
batches in flight). Before the memory-mapped cache the float32 splits alone were 4 x CAP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CAP_MIB = 64
SIDE = 128  # 3 x 128 x 128 uint8 = 48 KiB an image

CHILD = r"""
import json, sys
from pathlib import Path
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

folder, cache, run, side = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = experiment_from_mapping({
    "data": {"source": "imagefolder", "path": folder, "size": [side, side], "channels": 3,
             "augment": {"hflip": True}},
    "model": {"layers": [{"kind": "avgpool2d", "kernel": 16}, {"kind": "flatten"},
                         {"kind": "linear", "out": "classes"}]},
    "train": {"epochs": 1, "batch_size": 32, "num_threads": 1},
})
summary = train_experiment(cfg, Path(run), device="cpu", cache_dir=Path(cache))
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")][0]
print(json.dumps({"maxrss_kib": int(hwm.split()[1]),
                  "train": summary["data_report"]["counts"]["train"]}))
"""


def noise_folder(root: Path, images: int, side: int, seed: int = 0) -> Path:
    """``images`` random RGB PNGs in two class folders (noise: nothing compresses away)."""
    rng = np.random.default_rng(seed)
    for n in range(images):
        folder = root / ("a" if n % 2 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{n}.png", compress_level=0)
    return root


def peak_mib(folder: Path, tmp: Path, name: str) -> float:
    env = {**os.environ, "LAYERLAB_HOME": str(tmp / "home"), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(folder),
            str(tmp / f"cache-{name}"),
            str(tmp / f"run-{name}"),
            str(SIDE),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])["maxrss_kib"] / 1024


@pytest.mark.slow
def test_import_and_an_epoch_of_a_folder_4x_the_cap_stay_under_the_cap(tmp_path):
    per_image = 3 * SIDE * SIDE
    count = -(-CAP_MIB * 1024 * 1024 // per_image)  # uint8 >= CAP, float32 >= 4 x CAP
    big = noise_folder(tmp_path / "big", count, SIDE)
    # the baseline trains and evaluates on full batches too: the batches in flight are not the data
    small = noise_folder(tmp_path / "small", 160, SIDE, seed=1)
    assert count * per_image * 4 >= 4 * CAP_MIB * 1024 * 1024
    baseline = peak_mib(small, tmp_path, "small")
    peak = peak_mib(big, tmp_path, "big")
    assert peak - baseline < CAP_MIB, f"peak {peak:.0f} MiB, baseline {baseline:.0f} MiB, cap {CAP_MIB} MiB"
