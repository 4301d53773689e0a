"""Subspace training's cost per step (train.subspace) against direct training of the same network, on the CPU.

The networks of the intrinsic-dimension study on MNIST-shaped batches (1 x 28 x 28, 10 classes, batch
64): FC 784-200-200-10 (D = 199,210) and LeNet (D = 44,426). Each case trains epochs of the engine's own
loop (``train.loop.train_epoch``, Adam) with the plain network and with ``SubspaceNetwork`` at the
paper's d_int90 (FC 750, LeNet 290; dense at a d whose matrix fits); the rounds alternate, and the
fastest round of each side counts (load from other processes only slows a round). The figure is the
ratio of seconds per step, subspace / direct. Target: fastfood at most 3x. One thread on each side.
``LAYERLAB_BENCH_QUICK=1`` measures fewer rounds. Usage: ``python -m bench.bench_subspace``.
"""

from __future__ import annotations

import os
import time

import torch

from layerlab.nn.build import build_network
from layerlab.nn.resolve import network_for
from layerlab.train.config import ModelConfig
from layerlab.train.loop import train_epoch
from layerlab.train.subspace import SubspaceNetwork, make_projection

QUICK = os.environ.get("LAYERLAB_BENCH_QUICK") == "1"
ROUNDS = 2 if QUICK else 5
STEPS = 10 if QUICK else 30
BATCH = 64
NETWORKS = {
    "fc 784-200-200-10": (
        {"preset": "mlp", "options": {"hidden": [200, 200]}},
        {"fastfood": 750, "sparse": 750, "dense": 100},
    ),
    "lenet": (
        {"preset": "lenet5", "options": {"padding": 0}},
        {"fastfood": 290, "sparse": 290, "dense": 290},
    ),
}
TARGET = 3.0  # fastfood


def build(section: dict) -> torch.nn.Module:
    torch.manual_seed(0)
    spec = network_for(ModelConfig(**section), input_shape=(1, 28, 28), num_classes=10)
    return build_network(spec)


def seconds_per_step(model: torch.nn.Module, params, x, y) -> float:
    """One epoch of ``STEPS`` steps through the engine's loop; seconds per step."""
    optimizer = torch.optim.Adam(params, lr=1e-3)
    started = time.perf_counter()
    train_epoch(
        model, x, y, batch_size=BATCH, optimizer=optimizer, loss_fn=torch.nn.functional.cross_entropy,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip
    return (time.perf_counter() - started) / STEPS


def measure(section: dict, dims: dict[str, int]) -> dict[str, tuple[float, float, int]]:
    """``kind -> (subspace s/step, direct s/step, d)``: the best round of each, rounds interleaved."""
    x, y = torch.rand(STEPS * BATCH, 1, 28, 28), torch.randint(0, 10, (STEPS * BATCH,))
    direct = build(section)
    size = sum(p.numel() for p in direct.parameters())
    subspaces = {
        k: SubspaceNetwork(build(section), make_projection(k, size, d, seed=0), seed=0)
        for k, d in dims.items()
    }
    best = {"direct": float("inf"), **{k: float("inf") for k in dims}}
    seconds_per_step(direct, direct.parameters(), x, y)  # warm-up
    for _ in range(ROUNDS):
        best["direct"] = min(best["direct"], seconds_per_step(direct, direct.parameters(), x, y))
        for kind, sub in subspaces.items():
            best[kind] = min(best[kind], seconds_per_step(sub, [sub.theta_d], x, y))
    return {k: (best[k], best["direct"], dims[k]) for k in dims}


def run() -> list[dict]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        for name, (section, dims) in NETWORKS.items():
            for kind, (sub, direct, d) in measure(section, dims).items():
                ratio = sub / direct
                rows.append(
                    {
                        "name": f"subspace step, {kind} d={d}, {name} (batch {BATCH}, 1 thread)",
                        "value": round(sub * 1000, 3),
                        "unit": "ms/step",
                        "reference": f"direct step {direct * 1000:.3f} ms",
                        "ratio": round(ratio, 2),
                        "target": f"<= {TARGET:g}x" if kind == "fastfood" else "",
                        "ok": ratio <= TARGET if kind == "fastfood" else None,
                    }
                )
    finally:
        torch.set_num_threads(threads)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
