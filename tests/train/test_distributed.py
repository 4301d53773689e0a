"""Distributed data-parallel training (train/distributed.py, train/launch.py, ``layerlab train --nproc-per-node``).

Fast tests check the arithmetic (shards, loss scale, launch arguments, failure lines) in one
process. The ``e2e`` tests start real torchrun groups of 2 gloo processes on this machine.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from layerlab.core.errors import ConfigError
from layerlab.train.config import experiment_from_mapping
from layerlab.train.distributed import (
    SingleProcess,
    choose_backend,
    in_torchrun,
    loss_scale,
    step_slices,
)
from layerlab.train.launch import LaunchPlan, failure_text, group_failure


@pytest.mark.parametrize("n, batch, world", [(10, 4, 2), (11, 5, 2), (9, 3, 3), (7, 8, 2), (100, 64, 3)])
def test_the_ranks_parts_concatenated_are_the_single_process_batches(n, batch, world):
    parts = [step_slices(n, batch, world, rank) for rank in range(world)]
    assert len({len(p) for p in parts}) == 1  # every rank takes the same number of steps
    for step, per_rank in enumerate(zip(*parts, strict=True)):
        start = step * batch
        expected = list(range(start, min(start + batch, n)))
        got = [i for lo, hi, _ in per_rank for i in range(lo, hi)]
        assert got == expected
        assert {size for *_, size in per_rank} == {len(expected)}
        assert max(hi - lo for lo, hi, _ in per_rank) - min(hi - lo for lo, hi, _ in per_rank) <= 1


def test_a_last_batch_smaller_than_the_world_is_dropped():
    # 9 examples, batch 4, 2 ranks: batches of 4, 4 and 1; the 1 cannot feed 2 ranks
    assert [len(step_slices(9, 4, 2, r)) for r in (0, 1)] == [2, 2]


def test_scaled_rank_losses_average_to_the_global_batch_gradient():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x, y = torch.randn(7, 3), torch.randint(0, 2, (7,))
    loss_fn = torch.nn.CrossEntropyLoss()
    full = torch.autograd.grad(loss_fn(model(x), y), list(model.parameters()))
    world, grads = 2, []
    for rank in range(world):
        ((lo, hi, size),) = step_slices(7, 7, world, rank)
        loss = loss_fn(model(x[lo:hi]), y[lo:hi]) * loss_scale(hi - lo, size, world)
        grads.append(torch.autograd.grad(loss, list(model.parameters())))
    for whole, *ranks in zip(full, *grads, strict=True):
        torch.testing.assert_close(sum(ranks) / world, whole)  # DDP's all-reduce mean


def test_backend_is_gloo_on_the_cpu_and_nccl_on_cuda():
    assert choose_backend("auto", torch.device("cpu")) == "gloo"
    assert choose_backend("auto", torch.device("cuda", 0)) == "nccl"
    with pytest.raises(ConfigError, match="nccl backend needs CUDA"):
        choose_backend("nccl", torch.device("cpu"))


def test_single_process_strategy_is_the_writer_and_its_collectives_are_identities():
    one = SingleProcess(torch.device("cpu"))
    assert one.is_writer and not one.distributed and one.world_size == 1
    assert one.all_sum([1.5, 2]) == [1.5, 2.0] and one.any(True) and one.broadcast({"a": 1}) == {"a": 1}
    model = torch.nn.Linear(2, 2)
    assert one.wrap(model) is model


def test_a_global_batch_smaller_than_the_world_is_a_config_error():
    two = SingleProcess(torch.device("cpu"), rank=1, world_size=2)
    assert not two.is_writer
    with pytest.raises(ConfigError, match="global batch"):
        two.check(1)


def test_torchrun_env_is_recognised():
    assert not in_torchrun({})
    assert in_torchrun(
        {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "1"}
    )


def test_distributed_config_keys_and_their_limits():
    cfg = experiment_from_mapping({"train": {"distributed": {"nproc_per_node": 2}, "sync_batchnorm": True}})
    assert cfg.train.distributed.world_size == 2 and cfg.train.sync_batchnorm
    assert cfg.to_dict()["train"]["distributed"] == {"nproc_per_node": 2, "nnodes": 1, "backend": "auto"}
    with pytest.raises(ConfigError, match="nproc_per_node"):
        experiment_from_mapping({"train": {"distributed": {"nproc_per_node": 0}}})
    with pytest.raises(ConfigError, match="backend"):
        experiment_from_mapping({"train": {"distributed": {"backend": "mpi"}}})


def test_launch_arguments_single_node_is_standalone_and_multi_node_uses_c10d():
    assert "--standalone" in LaunchPlan(nproc_per_node=2).torchrun_args()
    multi = LaunchPlan(
        nproc_per_node=1, nnodes=2, node_rank=1, rdzv_endpoint="10.0.0.1:29400", max_restarts=2
    )
    multi.check()
    args = multi.torchrun_args()
    assert {"--nnodes=2", "--node-rank=1", "--rdzv-backend=c10d", "--rdzv-endpoint=10.0.0.1:29400"} <= set(
        args
    )
    assert "--max-restarts=2" in args
    with pytest.raises(ConfigError, match="rdzv-endpoint"):
        LaunchPlan(nnodes=2).check()
    with pytest.raises(ConfigError, match="node-rank"):
        LaunchPlan(nnodes=2, node_rank=2, rdzv_endpoint="h:1").check()


def test_a_failed_group_is_one_line(tmp_path):
    report = tmp_path / "report.json"
    report.write_text(json.dumps({"rank": 1, "exitcode": -9, "world_size": 2}))
    error = group_failure(report, 137, hint="resume it")
    assert error.one_line().startswith("the training group failed: rank 1 (of 2) was killed by SIGKILL")
    assert "\n" not in error.one_line()
    report.write_text(json.dumps({"rank": 0, "exitcode": 2}))
    assert group_failure(report, 2) is None  # the rank printed its own error line (a config error)
    report.write_text(json.dumps({"error": "RendezvousTimeoutError: timed out"}))
    assert "RendezvousTimeoutError" in group_failure(report, 1).one_line()
    assert group_failure(report, 0) is None
    assert failure_text(0, 3) == "rank 0 exited with code 3"


def test_a_collective_failing_because_a_rank_died_is_recognised():
    from layerlab.train.distributed import peer_lost

    assert peer_lost(RuntimeError("[gloo/transport/tcp/pair.cc:553] Connection closed by peer [127.0.0.1]:1"))
    assert not peer_lost(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not peer_lost(ValueError("Connection closed by peer"))


def test_every_rank_runs_layerlab_train_with_the_run_dir_and_the_world_size_recorded(tmp_path):
    import argparse

    from layerlab.cli.commands import train
    from layerlab.cli.distributed import plan_for, rank_argv

    parser = argparse.ArgumentParser()
    train.add_arguments(parser)
    args = parser.parse_args(["cfg.yaml", "--nproc-per-node", "2", "--set", "train.lr=0.1", "--json"])
    cfg = experiment_from_mapping({})
    plan = plan_for(args, cfg, tmp_path / "run")
    assert plan.world_size == 2 and "--standalone" in plan.torchrun_args()
    argv = rank_argv(args, tmp_path / "run", 2, 1)
    assert argv[:4] == ["-m", "layerlab.cli.main", "train", "cfg.yaml"]
    assert ["--run-dir", str(tmp_path / "run")] == argv[4:6] and "--json" in argv
    assert "train.distributed.nproc_per_node=2" in argv and "train.lr=0.1" in argv
    one = parser.parse_args(["cfg.yaml"])
    assert plan_for(one, cfg, tmp_path / "run") is None  # one process: no torchrun
    with pytest.raises(ConfigError, match="max-restarts"):
        plan_for(parser.parse_args(["cfg.yaml", "--max-restarts", "1"]), cfg, tmp_path / "run")
    from_config = experiment_from_mapping({"train": {"distributed": {"nproc_per_node": 3}}})
    assert plan_for(one, from_config, tmp_path / "run").world_size == 3


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2,
    reason="needs 2 CUDA devices (NCCL places one rank per device by LOCAL_RANK)",
)
def test_nccl_group_on_cuda_places_one_rank_per_device(tmp_path):
    config = tmp_path / "spiral.yaml"
    config.write_text(yaml.safe_dump({**DDP, "train": {**DDP["train"], "epochs": 2}}))
    env = {**os.environ, "LAYERLAB_HOME": str(tmp_path / "home"), "LAYERLAB_RECORD": "0"}
    summary = last_json(layerlab("train", str(config), "--nproc-per-node", "2", "--run-dir", str(tmp_path / "r"),
                                 "--json", env=env))  # fmt: skip
    assert summary["distributed"]["backend"] == "nccl" and summary["device"].startswith("cuda")


# ---- real torchrun groups (2 gloo processes on this machine) ----------------------------------------

DDP = {
    "seed": 3,
    "data": {"source": "spiral", "points_per_class": 300},
    "model": {"preset": "mlp", "options": {"hidden": [32], "dropout": 0.0}},
    "train": {"epochs": 30, "batch_size": 32, "lr": 0.01, "optimizer": "sgd", "num_threads": 1},
}


def layerlab(*args, env, **kwargs):
    return subprocess.Popen(
        [sys.executable, "-m", "layerlab.cli.main", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


def last_json(process, timeout=240) -> dict:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def weights(run_dir: Path) -> dict:
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    return state["model"]


@pytest.fixture(scope="module")
def ddp_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("ddp")
    config = home / "spiral.yaml"
    config.write_text(yaml.safe_dump(DDP))
    env = {**os.environ, "LAYERLAB_HOME": str(home / "home"), "OMP_NUM_THREADS": "1", "LAYERLAB_RECORD": "0"}
    return home, config, env


@pytest.fixture(scope="module")
def whole(ddp_env):
    """An uninterrupted 2-process run (shared by the comparisons below)."""
    home, config, env = ddp_env
    run_dir = home / "whole"
    summary = last_json(layerlab("train", str(config), "--nproc-per-node", "2", "--run-dir", str(run_dir),
                                 "--json", env=env))  # fmt: skip
    return run_dir, summary


@pytest.mark.e2e
def test_two_processes_train_identical_weights_close_to_one_process(ddp_env, whole):
    home, config, env = ddp_env
    run_dir, summary = whole
    assert summary["distributed"]["world_size"] == 2 and summary["distributed"]["backend"] == "gloo"
    assert summary["distributed"]["ranks_weights_identical"] is True
    assert summary["epochs"] == 30 and summary["status"] == "completed"
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == list(range(1, 31))  # rank 0 alone wrote them, once each
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["train"]["distributed"]["nproc_per_node"] == 2  # --resume DIR relaunches 2

    single_dir = home / "single"
    single = last_json(layerlab("train", str(config), "--run-dir", str(single_dir), "--json", env=env))
    # The same global batches of the same permutation, the same mean-loss gradient: only the order of
    # float32 additions differs (two partial gradients all-reduced instead of one sum), about 1e-7
    # relative per step; over 30 epochs of SGD (about 900 steps) that stays far below 1e-4.
    ddp_w, one_w = weights(run_dir), weights(single_dir)
    for name, value in one_w.items():
        torch.testing.assert_close(ddp_w[name], value, rtol=1e-4, atol=1e-5)
    assert abs(summary["train_loss"] - single["train_loss"]) < 1e-4
    assert abs(summary["val_accuracy"] - single["val_accuracy"]) <= 0.02
    # a checkpoint of a group loads in one process
    from layerlab.train.checkpoint import checkpoint_load

    assert checkpoint_load(run_dir / "checkpoints" / "last.ckpt")["epoch"] == 30


def rank_pids(run_dir: Path, rank: int) -> list[int]:
    """Pids of the ranks of the group training ``run_dir`` whose environment says RANK=rank."""
    wanted = {f"RANK={rank}".encode(), f"LAYERLAB_GROUP_RUN_DIR={run_dir}".encode()}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                env = set((entry / "environ").read_bytes().split(b"\0"))
            except OSError:
                continue
            if wanted <= env and any(item.startswith(b"TORCHELASTIC_RUN_ID=") for item in env):
                found.append(int(entry.name))
    return found


def kill_rank_after(run_dir: Path, process, rank: int, epoch: int) -> None:
    marker = run_dir / "checkpoints" / f"epoch-{epoch:04d}.ckpt"
    deadline = time.monotonic() + 180
    while not marker.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    pids = rank_pids(run_dir, rank)
    assert pids, "rank process not found"
    os.kill(pids[0], signal.SIGKILL)


@pytest.mark.e2e
def test_sigkill_of_one_rank_then_resume_gives_the_uninterrupted_weights(ddp_env, whole):
    home, config, env = ddp_env
    cut_dir = home / "cut"
    cut = layerlab(
        "train", str(config), "--nproc-per-node", "2", "--run-dir", str(cut_dir), "--json", env=env
    )
    kill_rank_after(cut_dir, cut, 1, 2)
    out, err = cut.communicate(timeout=120)
    assert cut.returncode != 0 and not (cut_dir / "summary.json").exists(), "the run ended before the kill"
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert lines and "the training group failed: rank 1 (of 2) was killed by SIGKILL" in lines[-1], err[
        -2000:
    ]
    assert "Traceback" not in err

    resumed = last_json(layerlab("train", "--resume", str(cut_dir), "--json", env=env))
    assert resumed["distributed"]["world_size"] == 2  # from the recorded config
    assert resumed["epochs"] == 30 and resumed["weights_sha256"] == whole[1]["weights_sha256"]


@pytest.mark.e2e
def test_with_max_restarts_a_killed_rank_is_restarted_and_the_group_resumes(ddp_env, whole):
    home, config, env = ddp_env
    run_dir = home / "restarted"
    process = layerlab("train", str(config), "--nproc-per-node", "2", "--max-restarts", "1",
                       "--run-dir", str(run_dir), "--json", env=env)  # fmt: skip
    kill_rank_after(run_dir, process, 1, 2)
    summary = last_json(process)
    assert summary["epochs"] == 30 and summary["weights_sha256"] == whole[1]["weights_sha256"]
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, 31))
