"""train.precision / train.compile / train.channels_last: autocast, grad scaler, channels-last, torch.compile."""

import pytest
import torch

from layerlab.core.errors import ConfigError
from layerlab.train.checkpoint import checkpoint_load
from layerlab.train.config import experiment_from_mapping
from layerlab.train.precision import CompiledOrEager, Precision
from layerlab.train.runner import train_experiment

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def config(data=None, model=None, **train):
    base = {"epochs": 2, "batch_size": 16, "lr": 0.01}
    return experiment_from_mapping(
        {
            "seed": 3,
            "data": data or {},
            "model": model or {"options": {"hidden": [16]}},
            "train": {**base, **train},
        }
    )


def digits(**train):
    return config({"source": "digits", "limit": 120}, {"preset": "lenet5"}, epochs=1, **train)


def test_precision_choices_and_yaml_int():
    assert config().train.precision == "32"
    assert config(precision=32).train.precision == "32"
    assert config(precision="bf16").train.precision == "bf16"
    with pytest.raises(ConfigError) as err:
        config(precision="fp16")
    assert err.value.where == "train.precision"
    assert "32, bf16, 16-mixed" in err.value.one_line()


def test_16_mixed_on_the_cpu_is_refused_with_a_hint(standins, tmp_path):
    with pytest.raises(ConfigError) as err:
        train_experiment(config(precision="16-mixed"), tmp_path / "r", device="cpu")
    assert "CUDA" in err.value.one_line() and "bf16" in err.value.one_line()


def test_bf16_autocast_trains_on_the_cpu_with_float32_logits(standins, tmp_path):
    summary = train_experiment(config(precision="bf16"), tmp_path, device="cpu")
    assert summary["precision"] == "bf16" and summary["status"] == "completed"
    assert summary["train_loss"] is not None and summary["val_accuracy"] is not None
    plain = train_experiment(config(), tmp_path / "plain", device="cpu")
    assert plain["precision"] == "32"
    assert summary["weights_sha256"] != plain["weights_sha256"]  # autocast really ran in bfloat16
    model = torch.nn.Linear(2, 3)
    out = Precision("bf16", "cpu").forward(model, torch.randn(4, 2))
    assert out.dtype == torch.float32
    with Precision("bf16", "cpu").autocast():
        assert model(torch.randn(4, 2)).dtype == torch.bfloat16


def test_precision_32_is_the_plain_path():
    p = Precision("32", "cpu")
    assert p.scaler is None and not p.enabled and p.state_dict() is None
    x = torch.randn(2, 1, 4, 4)
    assert p.inputs(x) is x


def test_channels_last_on_the_cpu_when_asked_matches_the_default_layout(tmp_path):
    torch.set_num_threads(1)
    auto = train_experiment(digits(), tmp_path / "auto", device="cpu")
    assert auto["channels_last"] is False  # auto is off on the CPU
    last = train_experiment(digits(channels_last=True), tmp_path / "last", device="cpu")
    assert last["channels_last"] is True
    assert last["train_loss"] == pytest.approx(auto["train_loss"], rel=1e-3, abs=1e-4)
    assert last["val_loss"] == pytest.approx(auto["val_loss"], rel=1e-3, abs=1e-4)


def test_a_failing_compile_falls_back_to_eager_with_a_warning(standins, tmp_path, monkeypatch):
    def broken(module, **kwargs):
        def call(*args, **kw):
            raise RuntimeError("no C++ compiler in /some/server/path")

        return call

    monkeypatch.setattr(torch, "compile", broken)
    summary = train_experiment(config(compile=True), tmp_path / "c", device="cpu")
    plain = train_experiment(config(), tmp_path / "p", device="cpu")
    assert summary["status"] == "completed" and summary["compile"] is False
    assert [w for w in summary["warnings"] if "train.compile" in w and "eager" in w]
    assert not [w for w in summary["warnings"] if "/some/server" in w]
    assert summary["weights_sha256"] == plain["weights_sha256"]  # eager from the first step


def test_compile_wrapper_keeps_the_plain_module():
    model = torch.nn.Linear(2, 3)
    wrapped = CompiledOrEager(model, lambda message: None)
    assert wrapped.module is model
    assert list(wrapped.parameters()) == list(model.parameters())


@pytest.mark.slow
def test_compile_trains_a_tiny_mlp_for_one_epoch(standins, tmp_path):
    summary = train_experiment(config(compile=True, epochs=1), tmp_path, device="cpu")
    assert summary["status"] == "completed"
    if summary["compile"] is False:  # this machine cannot compile: the fallback said so
        assert [w for w in summary["warnings"] if "train.compile" in w]
    ckpt = checkpoint_load(tmp_path / "checkpoints" / "last.ckpt")
    assert not [k for k in ckpt["model"] if "_orig_mod" in k or k.startswith("module.")]


@needs_cuda
def test_16_mixed_on_cuda_scales_and_resumes_exactly(standins, tmp_path):
    full = train_experiment(config(precision="16-mixed", epochs=3), tmp_path / "full", device="cuda")
    assert full["precision"] == "16-mixed"
    ckpt = checkpoint_load(tmp_path / "full" / "checkpoints" / "last.ckpt")
    assert ckpt["grad_scaler"] and ckpt["grad_scaler"]["scale"] > 0
    train_experiment(config(precision="16-mixed", epochs=2), tmp_path / "part", device="cuda")
    resumed = train_experiment(
        config(precision="16-mixed", epochs=3), tmp_path / "part", resume=True, device="cuda"
    )
    assert resumed["weights_sha256"] == full["weights_sha256"]


@needs_cuda
def test_16_mixed_with_grad_clip_unscales_first(standins, tmp_path):
    summary = train_experiment(config(precision="16-mixed", grad_clip=1.0), tmp_path, device="cuda")
    assert summary["status"] == "completed"


@needs_cuda
def test_channels_last_is_on_by_default_for_a_cuda_convnet(tmp_path):
    summary = train_experiment(digits(precision="bf16"), tmp_path, device="cuda")
    assert summary["channels_last"] is True and summary["precision"] == "bf16"


@needs_cuda
def test_cuda_batches_become_channels_last_inputs():
    batch = torch.randn(4, 1, 8, 8).pin_memory()  # as a data view pins a host batch before the copy
    moved = Precision("32", "cuda", channels_last=True).inputs(batch.to("cuda", non_blocking=True))
    assert moved.is_contiguous(memory_format=torch.channels_last)
