"""Subspace training (train.subspace): projections, theta0 + P theta_d, exact resume, ordinary checkpoints."""

import math

import pytest
import torch

from layerlab.core.errors import ConfigError
from layerlab.inference.trained import load_trained
from layerlab.train.callbacks import Callback
from layerlab.train.checkpoint import checkpoint_load
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment
from layerlab.train.subspace import (
    SubspaceNetwork,
    _hadamard_matrix,
    fwht,
    make_projection,
)

KINDS = ("dense", "sparse", "fastfood")


class Crash(Exception):
    pass


class CrashAfter(Callback):
    """Raises once the last checkpoint of ``epoch`` is written: the run dies between two epochs."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_checkpoint(self, trainer, path, epoch, kind):
        if epoch == self.epoch and kind == "last":
            raise Crash()


def network():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))


def config(**subspace):
    train = {"epochs": 4, "batch_size": 32, "lr": 0.05, "subspace": {"dim": 20, **subspace}}
    return experiment_from_mapping(
        {"seed": 2, "data": {"source": "spiral"}, "model": {"options": {"hidden": [16]}}, "train": train}
    )


@pytest.mark.parametrize("kind", ["dense", "sparse"])
def test_dense_and_sparse_columns_have_unit_norm_over_the_whole_network(kind):
    p = make_projection(kind, 500, 12, seed=1).matrix()
    assert p.shape == (500, 12)
    assert torch.allclose(p.norm(dim=0), torch.ones(12), atol=1e-5)


def test_sparse_projection_has_density_one_over_sqrt_d():
    size = 40_000
    p = make_projection("sparse", size, 50, seed=0).matrix()
    density = float((p != 0).float().mean())
    assert abs(density - 1 / math.sqrt(size)) < 0.15 / math.sqrt(size)


def test_fastfood_columns_have_unit_norm_at_a_power_of_two_and_about_one_otherwise():
    exact = make_projection("fastfood", 256, 9, seed=4).matrix()
    assert torch.allclose(exact.norm(dim=0), torch.ones(9), atol=1e-5)
    padded = make_projection("fastfood", 3000, 40, seed=4).matrix()  # L = 4096: D / L of the norm kept
    assert abs(float(padded.norm(dim=0).mean()) - 1) < 0.05


@pytest.mark.parametrize("size,dim", [(37, 5), (64, 64), (300, 17), (5, 1)])
def test_fastfood_agrees_with_the_explicit_h_g_pi_h_b_matrix(size, dim):
    p = make_projection("fastfood", size, dim, seed=3)
    length = p.padded
    h = _hadamard_matrix(length.bit_length() - 1, torch.zeros(1))
    permutation = torch.zeros(length, length)
    permutation[torch.arange(length), p.pi] = 1
    transform = h @ torch.diag(p.g) @ permutation @ h @ torch.diag(p.b)
    expected = transform[:size, :dim] / p.divisor
    assert torch.allclose(p.matrix(), expected, atol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("size,dim", [(37, 5), (300, 17)])
def test_the_gradient_of_p_theta_d_is_p_transpose_g(kind, size, dim):
    p = make_projection(kind, size, dim, seed=5)
    theta_d = torch.randn(dim, requires_grad=True)
    g = torch.randn(size)
    (p(theta_d) * g).sum().backward()
    assert torch.allclose(theta_d.grad, p.matrix().T @ g, atol=1e-4)


def test_fwht_matches_the_hadamard_matrix_and_is_its_own_inverse_up_to_length():
    for levels in (0, 3, 9, 12):
        x = torch.randn(1 << levels, dtype=torch.float64)
        h = _hadamard_matrix(levels, x)
        assert torch.allclose(fwht(x), h @ x)
        assert torch.allclose(fwht(fwht(x)), x * (1 << levels))


@pytest.mark.parametrize("kind", KINDS)
def test_theta_d_starts_at_zero_so_the_network_is_its_initialization(kind):
    net = network()
    x = torch.randn(8, 5)
    before = net(x)
    sub = SubspaceNetwork(net, make_projection(kind, 66, 10, seed=0), seed=0)
    assert torch.equal(sub.theta_d, torch.zeros(10))
    assert torch.equal(sub(x), before)


@pytest.mark.parametrize("kind", KINDS)
def test_only_theta_d_trains_and_theta_stays_in_the_span_of_p(kind):
    net = network()
    theta0 = torch.cat([p.detach().reshape(-1) for p in net.parameters()]).clone()
    sub = SubspaceNetwork(net, make_projection(kind, 66, 10, seed=0), seed=0)
    assert [n for n, p in sub.named_parameters() if p.requires_grad] == ["theta_d"]
    opt = torch.optim.SGD([sub.theta_d], lr=0.5)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(sub(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(p.grad is None for p in net.parameters())
    assert sub.theta_d.abs().sum() > 0
    sub.materialize()
    theta = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    expected = theta0 + sub.projection.matrix() @ sub.theta_d.detach()
    assert torch.allclose(theta, expected, atol=1e-5)
    assert torch.equal(sub.theta0, theta0)  # theta0 is frozen


@pytest.mark.parametrize("kind", KINDS)
def test_resume_is_bitwise_exact(tmp_path, kind):
    whole = train_experiment(config(projection=kind), tmp_path / "whole", device="cpu")
    with pytest.raises(Crash):
        train_experiment(config(projection=kind), tmp_path / "cut", device="cpu", callbacks=[CrashAfter(2)])
    resumed = train_experiment(None, tmp_path / "cut", resume=True, device="cpu")
    assert resumed["weights_sha256"] == whole["weights_sha256"]
    assert resumed["best_weights_sha256"] == whole["best_weights_sha256"]
    last = checkpoint_load(tmp_path / "whole" / "checkpoints" / "last.ckpt")
    assert set(last["subspace"]) >= {"theta0", "theta_d", "projection", "seed", "dim", "parameters"}
    assert "p" not in last["subspace"]  # P is redrawn from its seed, never stored


def test_a_subspace_run_trains_and_its_checkpoints_are_ordinary_weights(tmp_path):
    summary = train_experiment(config(), tmp_path / "run", device="cpu")
    size = summary["parameters"]  # spiral's 2 inputs, 16 hidden, 3 classes: 99
    assert summary["trainable_parameters"] == 20 and size == 99
    assert summary["subspace"] == {"projection": "fastfood", "dim": 20, "parameters": size, "seed": 2}
    assert summary["test_accuracy"] > 0.4  # it learned something (chance is 1/3)
    state = checkpoint_load(tmp_path / "run" / "checkpoints" / "last.ckpt")
    sub = state["subspace"]
    theta = sub["theta0"] + make_projection("fastfood", size, 20, seed=2)(sub["theta_d"])
    weights = torch.cat([t.reshape(-1) for t in state["model"].values()])
    assert torch.allclose(weights, theta, atol=1e-6)
    trained = load_trained(tmp_path / "run")  # predict and export read the materialized weights
    assert isinstance(trained.model, torch.nn.Module) and trained.classes == ["0", "1", "2"]


def test_dim_larger_than_the_parameter_count_is_one_clear_line(tmp_path):
    with pytest.raises(ConfigError) as err:
        train_experiment(config(dim=100_000), tmp_path / "run", device="cpu")
    line = err.value.one_line()
    assert "dim 100,000 is larger than the network's 99 parameters" in line and "\n" not in line
    assert err.value.where == "train.subspace.dim"


@pytest.mark.parametrize("dim", [0, -4, "nan", 2.5])
def test_bad_dims_are_refused_by_the_config(dim):
    with pytest.raises(ConfigError, match="train.subspace.dim"):
        experiment_from_mapping({"train": {"subspace": {"dim": dim}}})


def test_settings_that_do_not_combine_are_refused(tmp_path):
    cfg = experiment_from_mapping(
        {"data": {"source": "spiral"}, "train": {"epochs": 1, "l2": 0.1, "subspace": {"dim": 5}}}
    )
    with pytest.raises(ConfigError, match="train.l1/l2: does not combine with train.subspace"):
        train_experiment(cfg, tmp_path / "run", device="cpu")


def test_a_huge_dense_projection_is_refused_before_allocating():
    with pytest.raises(ConfigError, match="use projection: sparse or fastfood"):
        make_projection("dense", 10_000_000, 1_000, seed=0)
