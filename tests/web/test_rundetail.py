"""The run page's pieces that need no database: which chart a metric series goes on."""

from __future__ import annotations

import pytest

from layerlab.web.rundetail import metric_group


@pytest.mark.parametrize(
    ("name", "chart"),
    [
        ("loss", "loss"), ("val_loss", "loss"), ("train/nll_loss", "loss"),
        ("accuracy", "acc"), ("val_acc", "acc"), ("eval/top5_accuracy", "acc"),
        ("lr", "lr"), ("group0_lr", "lr"), ("learning_rate", "lr"),
        ("seconds", "seconds"), ("epoch_time", "seconds"),
        ("grad_norm", "m-grad_norm"), ("accumulated", "m-accumulated"),
    ],
)  # fmt: skip
def test_series_are_grouped_by_what_they_measure(name, chart):
    assert metric_group(name)[0] == chart
