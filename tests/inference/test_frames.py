"""Activation traces over frames, peak counting, the peak-count baseline, and a video run's export and predict."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from layerlab.core.errors import ConfigError, DataError
from layerlab.inference.evaluate import evaluate_run
from layerlab.inference.export import export_model
from layerlab.inference.frames import (
    activation_trace,
    baseline_for_run,
    count_crossings,
    count_peaks,
    frame_activations,
    peak_count_baseline,
    trace_peaks,
)
from layerlab.inference.predict import predict_files
from layerlab.inference.trained import load_trained
from layerlab.nn.build import build_network
from layerlab.nn.spec import parse_network
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment

torch.set_num_threads(1)

FRAMES = [6, 1, 8, 8]
BODY = [
    {"kind": "conv2d", "name": "conv1", "out": 3, "kernel": 3, "padding": 1},
    {"kind": "relu", "name": "relu1"},
    {"kind": "flatten", "name": "code"},
    {"kind": "linear", "name": "embed", "out": 4},
]


def video_net():
    torch.manual_seed(0)
    layers = [
        {"kind": "timedistributed", "name": "frames", "layers": BODY},
        {"kind": "lstm", "name": "rnn", "hidden": 5},
        {"kind": "linear", "name": "head", "out": 3},
    ]
    return build_network(parse_network({"input": FRAMES, "layers": layers})).eval()


def waves(counts, steps=40, seed=0):
    """Traces cos(2 pi k t / T + phase) with random phases, ``(N, T, 1)``."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps) / steps
    phase = rng.uniform(0, 2 * np.pi, len(counts))
    return np.cos(2 * np.pi * np.asarray(counts)[:, None] * t[None] + phase[:, None])[:, :, None]


def test_counting_turns_recovers_k_whatever_the_phase():
    counts = np.repeat(np.arange(1, 6), 40)
    traces = waves(counts)
    assert np.array_equal(count_crossings(traces, 0.3, turns=True)[:, 0], counts)
    peaks = count_crossings(traces, 0.3)[:, 0]
    assert np.all((peaks == counts) | (peaks == counts - 1))  # a top on the first frame is not a rise


def test_noise_inside_the_band_never_counts_twice():
    rng = np.random.default_rng(1)
    trace = waves([3], steps=60)[0, :, 0] + rng.normal(0, 0.05, 60)
    assert count_peaks(trace, 0.3, turns=True) == 3
    assert count_peaks(np.zeros(10)) == 0 and count_peaks(np.ones(1)) == 0


def test_trace_peaks_are_the_tops_count_peaks_counts():
    trace = np.array([0, 1, 3, 1, 0, 2, 4, 2, 0, 0.5, 0], dtype=float)
    peaks = trace_peaks(trace, 0.3)
    assert peaks.tolist() == [2, 6] and count_peaks(trace, 0.3) == 2


@pytest.mark.parametrize("prominence", [0.0, 1.0, -0.2, float("nan")])
def test_prominence_is_checked(prominence):
    with pytest.raises(ConfigError, match="prominence must be in"):
        count_peaks(np.arange(5.0), prominence)


def test_trace_of_a_layer_inside_the_body_is_the_per_frame_channel_mean():
    model = video_net()
    clip = torch.randn(*FRAMES)
    trace = activation_trace(model, clip, "conv1", 2)
    expected = model.frames.conv1(clip).detach()[:, 2].mean(dim=(1, 2)).numpy()
    assert trace.shape == (6,) and np.allclose(trace, expected, atol=1e-6)
    at = activation_trace(model, clip, "frames.conv1", 1, position=(3, 4))
    assert np.allclose(at, model.frames.conv1(clip).detach()[:, 1, 3, 4].numpy(), atol=1e-6)
    outer = frame_activations(model, clip[None], "frames")  # the body's output (1, T, 4)
    assert tuple(outer.shape) == (1, 6, 4)


def test_frames_go_through_an_image_network_as_a_batch():
    torch.manual_seed(0)
    image_net = build_network(parse_network({"input": FRAMES[1:], "layers": BODY})).eval()
    clip = torch.randn(*FRAMES)
    trace = activation_trace(image_net, clip, "embed", 0)
    assert np.allclose(trace, image_net(clip).detach()[:, 0].numpy(), atol=1e-6)


def test_trace_errors_name_what_is_wrong():
    model = video_net()
    clip = torch.randn(*FRAMES)
    with pytest.raises(ConfigError, match="no single layer named 'conv9'.*frames"):
        activation_trace(model, clip, "conv9", 0)
    with pytest.raises(ConfigError, match="channel 3 is out of range: layer conv1 has 3"):
        activation_trace(model, clip, "conv1", 3)
    with pytest.raises(ConfigError, match=r"position \(8, 0\) is outside"):
        activation_trace(model, clip, "conv1", 0, position=(8, 0))
    with pytest.raises(DataError, match="do not fit this model"):
        activation_trace(model, torch.randn(6, 1, 9, 9), "conv1", 0)


class Position(torch.nn.Module):
    """Stands in for a trained per-frame unit: the frame's brightness-weighted column, one value per frame."""

    input_shape = (20, 1, 1, 16)

    def __init__(self):
        super().__init__()
        self.unit = torch.nn.Identity()
        self.scale = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        column = (x[:, :, 0, 0] * torch.arange(16.0)).sum(-1) / x[:, :, 0, 0].sum(-1)  # (N, T)
        return self.unit(column * self.scale)


def moving_dots(counts, seed):
    """A dot moving back and forth ``k`` times along 16 pixels over 20 frames."""
    rng = np.random.default_rng(seed)
    clips = np.full((len(counts), 20, 1, 1, 16), 0.01, dtype=np.float32)
    t = np.arange(20) / 20
    for i, k in enumerate(counts):
        where = np.rint(7.5 + 6 * np.cos(2 * np.pi * k * t + rng.uniform(0, 6.3))).astype(int)
        clips[i, np.arange(20), 0, 0, where] = 1.0
    return torch.from_numpy(clips)


def test_peak_count_baseline_chooses_on_train_and_reports_test():
    labels = {"train": np.repeat(np.arange(3), 20), "test": np.repeat(np.arange(3), 10)}
    clips = {"train": moving_dots(labels["train"] + 1, 0), "test": moving_dots(labels["test"] + 1, 1)}
    result = peak_count_baseline(Position(), clips, labels, "unit", classes=["1", "2", "3"])
    assert result.layer == "unit" and result.channel == 0 and result.turns
    assert (
        result.train_accuracy == 1.0 and result.test_accuracy == 1.0 and result.chance == pytest.approx(1 / 3)
    )
    with pytest.raises(ConfigError, match="not repetition counts"):
        peak_count_baseline(Position(), clips, labels, "unit", classes=["a", "b", "c"])
    with pytest.raises(DataError, match="60 train clips but 2 train labels"):
        peak_count_baseline(Position(), clips, {**labels, "train": [0, 1]}, "unit", classes=["1", "2", "3"])


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("video") / "run"
    cfg = experiment_from_mapping(
        {
            "seed": 0,
            "data": {
                "source": "repetition-counting",
                "video": {"frames": 8, "size": 8, "max_count": 2, "clips_per_class": 12},
            },
            "model": {
                "layers": [
                    {"kind": "timedistributed", "name": "frames", "layers": BODY},
                    {"kind": "lstm", "name": "rnn", "hidden": 5},
                    {"kind": "linear", "name": "head", "out": "classes"},
                ]
            },
            "train": {"epochs": 1, "batch_size": 8, "num_threads": 1},
        }
    )
    train_experiment(cfg, run_dir)
    return run_dir


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_video_network_exports_with_parity_at_any_batch(video_run, tmp_path, fmt):
    out = export_model(video_run, fmt, tmp_path / f"model.{fmt}")  # raises unless it matches eager
    trained = load_trained(video_run)
    x = torch.randn(3, 8, 1, 8, 8)
    with torch.no_grad():
        eager = trained.model(x).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        got = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    else:
        got = torch.jit.load(str(out))(x).detach().numpy()
    assert np.allclose(got, eager, atol=1e-4)


def test_predict_takes_clip_arrays_and_clip_folders(video_run, tmp_path):
    from PIL import Image

    clips = np.random.default_rng(0).integers(0, 255, (2, 8, 1, 8, 8), dtype=np.uint8)
    np.save(tmp_path / "clips.npy", clips)
    folder = tmp_path / "clip"
    folder.mkdir()
    for n, frame in enumerate(clips[0]):
        Image.fromarray(frame[0]).save(folder / f"f{n}.png")
    results = predict_files(video_run, [tmp_path / "clips.npy", folder], top_k=2)
    assert [r["file"] for r in results] == [
        f"{tmp_path / 'clips.npy'}:1",
        f"{tmp_path / 'clips.npy'}:2",
        str(folder),
    ]
    assert results[0]["top"] == results[2]["top"]  # the folder holds clip 1's frames
    np.save(tmp_path / "short.npy", clips[:, :5])
    with pytest.raises(
        DataError, match=r"holds clips of shape \[5, 1, 8, 8\] but this run takes \[8, 1, 8, 8\]"
    ):
        predict_files(video_run, [tmp_path / "short.npy"])


def test_evaluate_and_the_baseline_on_the_runs_own_splits(video_run, tmp_path):
    config = tmp_path / "data.yaml"
    config.write_text(
        json.dumps(
            {
                "data": {
                    "source": "repetition-counting",
                    "video": {"frames": 8, "size": 8, "max_count": 2, "clips_per_class": 5},
                }
            }
        )
    )
    result = evaluate_run(video_run, str(config), device="cpu", cache_dir=tmp_path / "cache")
    assert result["n"] == 10 and 0.0 <= result["accuracy"] <= 1.0
    baseline = baseline_for_run(video_run, "embed", cache_dir=tmp_path / "cache")
    assert baseline.layer == "frames.embed" and 0 <= baseline.channel < 4 and baseline.chance == 0.5
    assert 0.0 <= baseline.test_accuracy <= 1.0 and baseline.train_examples + baseline.test_examples < 24
    assert baseline_for_run(video_run, "conv1", positions=True, untrained=True).position is not None
