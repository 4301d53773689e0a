"""The real sign-language photos (slow; skipped where ../shared/datasets is absent)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from layerlab.data.config import DataConfig, SplitConfig
from layerlab.data.prepare import prepare_data

FOLDER = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "sign-language-digits" / "Dataset"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not FOLDER.is_dir(), reason=f"sign-language folder not found at {FOLDER}"),
]


def number(path: str) -> int:
    return int(re.search(r"(\d+)", path.rsplit("/", 1)[-1]).group(1))


def test_ordered_split_holds_out_the_highest_file_numbers(tmp_path):
    torch.set_num_threads(1)
    cfg = DataConfig(
        source="imagefolder", path=str(FOLDER), split=SplitConfig(method="ordered", val=0.15, test=0.15)
    )
    data = prepare_data(cfg, seed=0, cache_dir=tmp_path)
    assert data.classes == [str(d) for d in range(10)]
    assert data.input_shape == (1, 64, 64)
    assert sum(data.report.totals.values()) == 1649 and not data.report.skipped
    # every class is present in the held-out tail (each person signed all ten digits)
    assert all(n > 0 for n in data.report.counts["test"].values())
    again = prepare_data(cfg, seed=0, cache_dir=tmp_path)
    assert again.report.cache == "hit" and torch.equal(again.test_x.materialize(), data.test_x.materialize())


def test_held_out_tail_is_made_of_later_files(tmp_path):
    from layerlab.data.prepare import load_source
    from layerlab.data.splits import ordered_split

    raw, _ = load_source(
        DataConfig(source="imagefolder", path=str(FOLDER), size=[16, 16]), seed=0, cache_dir=tmp_path
    )
    train, val, test = ordered_split(len(raw.y), 0.15, 0.15, raw.paths)
    numbers = [number(p) for p in raw.paths]
    assert max(numbers[i] for i in train) < min(numbers[i] for i in val)
    assert max(numbers[i] for i in val) < min(numbers[i] for i in test)
