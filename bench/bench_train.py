"""Training-loop overhead: layerlab's trainer against a hand-written PyTorch loop and Lightning's Trainer.

Both sides get the same network (built from the same spec with the same seed), the same tensors,
batch size, optimizer, learning rate and shuffling, and both validate once per epoch. The figure
compared is the time of the epochs themselves (train + validation), best of ``REPEATS``: layerlab's
per-epoch ``seconds`` from metrics.jsonl against the reference loop's own clock. Checkpoints are
written every ``EPOCHS`` epochs in the layerlab runs (once, at the end; outside the epoch clock).
Sharing the CPU: two signnet trainings at once (separate processes, as ``serve --workers 2``) against
one alone, in aggregate training steps per second, with torch's default threads (every core each, the
old policy) and with ``threads_for`` (the cores divided among the trainings, what workers do now).
DDP: ``layerlab train --nproc-per-node 2`` (gloo) against one process with every core, examples/s.
``LAYERLAB_BENCH_QUICK=1`` measures shorter windows.
Usage: ``python -m bench.bench_train``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from layerlab.train import adapters
from layerlab.train.config import experiment_from_mapping
from layerlab.train.runner import train_experiment
from layerlab.train.threads import threads_for, usable_cores, use_threads

REPEATS = 3
EPOCHS = 2


class _Pre:
    def to_dict(self):
        return {"kind": "synthetic"}


def synthetic_images(n_train=512, n_val=128, classes=10, seed=0) -> SimpleNamespace:
    """Random 1x64x64 images with the sign-language digits' shape (the loop does not care what they show)."""
    g = torch.Generator().manual_seed(seed)
    n = n_train + n_val
    x, y = torch.randn(n, 1, 64, 64, generator=g), torch.randint(0, classes, (n,), generator=g)
    return SimpleNamespace(
        train_x=x[:n_train],
        train_y=y[:n_train],
        val_x=x[n_train:],
        val_y=y[n_train:],
        test_x=x[:0],
        test_y=y[:0],
        classes=[str(i) for i in range(classes)],
        input_shape=(1, 64, 64),
        preprocessing=_Pre(),
        report={},
    )


def spiral_data(points_per_class=1000) -> SimpleNamespace:
    from layerlab.data.prepare import prepare_data

    cfg = experiment_from_mapping({"data": {"source": "spiral", "points_per_class": points_per_class}})
    return prepare_data(cfg.data, seed=0)


def layerlab_epoch_seconds(mapping: dict, data) -> float:
    """Best per-epoch time of layerlab's trainer on ``data`` (train + validation)."""
    original, check = adapters.prepare_data, adapters.check_network
    adapters.prepare_data = lambda *a, **k: data
    # The data comes from here, not from the config: the config-only shape check would read the default.
    adapters.check_network = lambda *a, **k: None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train_experiment(experiment_from_mapping(mapping), Path(tmp) / "run", device="cpu")
            rows = [
                json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
            ]
    finally:
        adapters.prepare_data, adapters.check_network = original, check
    return min(r["seconds"] for r in rows[1:] or rows)  # epoch 1 pays one-time warm-up


def build_model(mapping: dict, data):
    cfg = experiment_from_mapping(mapping)
    torch.manual_seed(cfg.seed)
    _, _, model = adapters.network_from_config(
        cfg.model, input_shape=data.input_shape, num_classes=len(data.classes)
    )
    return cfg, model


def reference_epoch_seconds(mapping: dict, data) -> float:
    """The same training written by hand, as a PyTorch tutorial would."""
    cfg, model = build_model(mapping, data)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    x, y, vx, vy = data.train_x, data.train_y, data.val_x, data.val_y
    bs, n, times = cfg.train.batch_size, len(data.train_x), []
    for epoch in range(cfg.train.epochs):
        start = time.perf_counter()
        model.train()
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(epoch))
        total, correct = 0.0, 0
        for i in range(0, n, bs):
            idx = perm[i : i + bs]
            xb, yb = x[idx], y[idx]
            out = model(xb)
            loss = F.cross_entropy(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item() * len(yb)
            correct += (out.argmax(1) == yb).sum().item()
        model.eval()
        with torch.no_grad():
            val_out = model(vx)
            _ = F.cross_entropy(val_out, vy).item(), (val_out.argmax(1) == vy).float().mean().item()
        times.append(time.perf_counter() - start)
    return min(times[1:] or times)


def lightning_epoch_seconds(mapping: dict, data) -> float | None:
    """Lightning's Trainer on the same model and data (logging, checkpointing, progress bar off)."""
    try:
        import lightning.pytorch as pl
    except ImportError:
        try:
            import pytorch_lightning as pl
        except ImportError:
            return None
    cfg, model = build_model(mapping, data)

    class Module(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = model

        def training_step(self, batch, _):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def validation_step(self, batch, _):
            xb, yb = batch
            return F.cross_entropy(self.net(xb), yb)

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=cfg.train.lr)

    train = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(data.train_x, data.train_y),
        batch_size=cfg.train.batch_size,
        shuffle=True,
    )
    val = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.val_x, data.val_y), batch_size=512)
    trainer = pl.Trainer(
        max_epochs=cfg.train.epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    start = time.perf_counter()
    trainer.fit(Module(), train, val)
    return (time.perf_counter() - start) / cfg.train.epochs


def compare(name: str, mapping: dict, data, target: float, repeats: int = REPEATS) -> list[dict]:
    ours, ref = [], []
    for _ in range(repeats):  # interleaved, so drift in machine load hits both sides alike
        ref.append(reference_epoch_seconds(mapping, data))
        ours.append(layerlab_epoch_seconds(mapping, data))
    n = len(data.train_x)
    ours_rate, ref_rate = n / min(ours), n / min(ref)
    ratio = ours_rate / ref_rate
    rows = [
        {
            "name": f"{name}: layerlab trainer throughput",
            "value": ours_rate,
            "unit": "examples/s",
            "reference": f"hand-written loop {ref_rate:,.0f} examples/s",
            "ratio": ratio,
            "target": f">= {target}",
            "ok": ratio >= target,
        }
    ]
    lightning = lightning_epoch_seconds(mapping, data)
    if lightning is None:
        rows.append(
            {
                "name": f"{name}: Lightning Trainer epoch time / layerlab's",
                "value": None,
                "unit": "",
                "reference": "skipped: lightning not installed (pip install '.[bench]')",
                "ratio": None,
                "target": "> 1",
                "ok": None,
            }
        )
    else:
        rows.append(
            {
                "name": f"{name}: Lightning Trainer epoch time / layerlab's",
                "value": lightning,
                "unit": "s/epoch",
                "reference": f"layerlab {min(ours):.3f} s/epoch",
                "ratio": lightning / min(ours),
                "target": "> 1",
                "ok": lightning > min(ours),
            }
        )
    return rows


CONV = {
    "seed": 0,
    "model": {"preset": "signnet"},
    "train": {"epochs": EPOCHS + 1, "batch_size": 32, "lr": 0.001, "checkpoint_every": EPOCHS + 1},
}
MLP = {
    "seed": 0,
    "model": {"preset": "mlp"},
    "train": {"epochs": EPOCHS + 2, "batch_size": 32, "lr": 0.01, "checkpoint_every": EPOCHS + 2},
}


def peak_memory_child() -> None:
    """Run in a subprocess: one conv training run, so ru_maxrss measures that run alone."""
    sign = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sign-language-digits" / "Dataset"
    with tempfile.TemporaryDirectory() as tmp:
        if sign.is_dir():
            mapping = {
                "data": {"source": "imagefolder", "path": str(sign), "size": [64, 64], "channels": 1},
                "model": {"preset": "signnet"},
                "train": {"epochs": 1},
            }
            train_experiment(
                experiment_from_mapping(mapping), Path(tmp) / "run", device="cpu", cache_dir=Path(tmp)
            )
            print("sign-language")
        else:
            layerlab_epoch_seconds(CONV, synthetic_images(n_train=2000))
            print("synthetic")


def peak_memory() -> dict:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", "import bench.bench_train as b; b.peak_memory_child()"],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    what = out.stdout.strip().splitlines()[-1]
    return {
        "name": f"peak memory of a signnet training run ({what} data, 1 epoch)",
        "value": mib,
        "unit": "MiB",
        "reference": f"ru_maxrss of the run's process ({time.perf_counter() - start:.0f}s)",
        "ratio": None,
        "target": "< 1024 MiB",
        "ok": mib < 1024,
    }


QUICK = os.environ.get("LAYERLAB_BENCH_QUICK") == "1"
SHARE_SECONDS = 2.0  # one measured window
SHARE_ROUNDS = 2 if QUICK else 6  # windows per case; the best one counts (load from elsewhere only slows)


def sharing_child(policy: str, concurrent: int) -> None:
    """Run in a subprocess: signnet training steps (batch 32, 1x64x64) in the windows the parent gives.

    Prints ``ready`` once warmed up; then for each line read from stdin (a window's start, as
    ``time.time()``) trains until ``SHARE_SECONDS`` later and prints ``{"steps", "seconds", "threads"}``;
    an empty line ends it.
    """
    if policy == "fair":
        use_threads(threads_for(concurrent))
    data = synthetic_images(n_train=256, n_val=0)
    _, model = build_model(CONV, data)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    batches = [(data.train_x[i : i + 32], data.train_y[i : i + 32]) for i in range(0, 256, 32)]

    def step(i: int) -> None:
        xb, yb = batches[i % len(batches)]
        loss = F.cross_entropy(model(xb), yb)
        opt.zero_grad()
        loss.backward()
        opt.step()

    for i in range(5):  # warm-up
        step(i)
    print("ready", flush=True)
    for line in sys.stdin:
        if not line.strip():
            return
        start = float(line)
        while time.time() < start:
            time.sleep(0.001)
        steps, end = 0, start + SHARE_SECONDS
        while time.time() < end:
            step(steps)
            steps += 1
        result = {"steps": steps, "seconds": time.time() - start, "threads": torch.get_num_threads()}
        print(json.dumps(result), flush=True)


class SharingGroup:
    """``concurrent`` training processes under one thread policy, measured together window by window."""

    def __init__(self, policy: str, concurrent: int):
        code = f"import bench.bench_train as b; b.sharing_child({policy!r}, {concurrent})"
        self.children = [
            subprocess.Popen(
                [sys.executable, "-c", code],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
            for _ in range(concurrent)
        ]
        for child in self.children:
            assert child.stdout.readline().strip() == "ready"

    def window(self) -> tuple[float, int]:
        """Aggregate steps/s of one window in which every child trains, and the threads each used."""
        start = time.time() + 0.1
        for child in self.children:
            child.stdin.write(f"{start}\n")
            child.stdin.flush()
        results = [json.loads(child.stdout.readline()) for child in self.children]
        return sum(r["steps"] / r["seconds"] for r in results), results[0]["threads"]

    def close(self) -> None:
        for child in self.children:
            child.stdin.write("\n")
            child.stdin.flush()
            child.wait(timeout=60)


def sharing(rounds: int = SHARE_ROUNDS) -> list[dict]:
    """Two trainings at once against one alone, old policy (torch's default threads) and new (threads_for)."""
    cases = [(policy, concurrent) for policy in ("default", "fair") for concurrent in (1, 2)]
    groups = {case: SharingGroup(*case) for case in cases}  # idle while the others measure
    rates: dict[tuple[str, int], list[float]] = {case: [] for case in cases}
    used: dict[tuple[str, int], int] = {}
    load = os.getloadavg()[0]
    try:
        for _ in range(rounds):  # interleaved, so drift in machine load hits every case alike
            for case in cases:
                rate, used[case] = groups[case].window()
                rates[case].append(rate)
    finally:
        for group in groups.values():
            group.close()
    rows = []
    for policy, words, target in (
        ("default", "torch's default threads (before)", None),
        ("fair", "threads_for: cores / trainings (now)", 0.9),
    ):
        alone, both = max(rates[policy, 1]), max(rates[policy, 2])
        ratio = both / alone
        rows.append(
            {
                "name": f"two signnet trainings at once, {words}: aggregate throughput / one alone",
                "value": both,
                "unit": "steps/s",
                "reference": f"one alone {alone:.1f} steps/s with {used[policy, 1]} thread(s); "
                f"{used[policy, 2]} thread(s) each when two",
                "ratio": ratio,
                "target": f">= {target}" if target else "informative",
                "ok": ratio >= target if target else None,
            }
        )
    load = max(load, os.getloadavg()[0])
    rows[-1]["note"] = (
        f"load average up to {load:.1f} on {usable_cores()} usable core(s) while measured; load from other "
        "processes slows the 2-thread cases most (an OpenMP thread waits at each barrier for one that is not running)"
    )
    return rows


DDP_BENCH = {
    "seed": 0,
    "data": {"source": "spiral", "points_per_class": 1000 if QUICK else 4000},
    "model": {"preset": "mlp", "options": {"hidden": [256, 256], "dropout": 0.0}},
    "train": {"epochs": 3 if QUICK else 4, "batch_size": 128, "lr": 0.01, "checkpoint_every": 1000},
}


def ddp_rate(nproc: int, threads: int) -> float:
    """Training examples/s of ``layerlab train`` (best epoch after the first; rank 0's clock for a group)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "ddp.json"
        config.write_text(json.dumps(DDP_BENCH))
        run_dir = Path(tmp) / "run"
        command = [sys.executable, "-m", "layerlab.cli.main", "train", str(config), "--run-dir", str(run_dir)]
        command += ["--no-record", "--json", "--set", f"train.num_threads={threads}"]
        if nproc > 1:
            command += ["--nproc-per-node", str(nproc)]
        env = {**os.environ, "LAYERLAB_HOME": tmp, "OMP_NUM_THREADS": str(threads)}
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1200, check=False)
        if done.returncode != 0:
            raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "failed")
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        totals = json.loads(done.stdout.strip().splitlines()[-1])["data_report"]["totals"]
    return int(totals["train"]) / min(r["seconds"] for r in rows[1:] or rows)


def ddp() -> list[dict]:
    """2 gloo processes (the cores divided between them) against one process with every core."""
    cores = threads_for(1)
    ones, twos = [], []
    for _ in range(1 if QUICK else 2):  # interleaved, so drift in machine load hits both sides alike
        ones.append(ddp_rate(1, cores))
        twos.append(ddp_rate(2, max(1, cores // 2)))
    one, two = max(ones), max(twos)
    return [
        {
            "name": f"DDP: 2 gloo processes on {cores} core(s) against 1 process with {cores} thread(s), "
            "spiral MLP 256x256, global batch 128",
            "value": two,
            "unit": "examples/s",
            "reference": f"one process {one:,.0f} examples/s",
            "ratio": two / one,
            "target": "informative (on 2 cores DDP may not win)",
            "ok": None,
        }
    ]


def run() -> list[dict]:
    rows = compare("signnet conv, 64x64 synthetic", CONV, synthetic_images(), 0.97)
    rows += compare(
        "spiral MLP", MLP, spiral_data(), 0.90, repeats=2 * REPEATS
    )  # cheap: more tries, less noise
    rows.append(peak_memory())
    rows += sharing()
    rows += ddp()
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
