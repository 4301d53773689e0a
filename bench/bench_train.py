"""Training-loop overhead: layerlab's trainer against a hand-written PyTorch loop and Lightning's Trainer.

Both sides get the same network (built from the same spec with the same seed), the same tensors,
batch size, optimizer, learning rate and shuffling, and both validate once per epoch. The figure
compared is the time of the epochs themselves (train + validation), best of ``REPEATS``: layerlab's
per-epoch ``seconds`` from metrics.jsonl against the reference loop's own clock. Checkpoints are
written every ``EPOCHS`` epochs in the layerlab runs (once, at the end; outside the epoch clock).
Usage: ``python -m bench.bench_train``.
"""

from __future__ import annotations

import json
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
    original = adapters.prepare_data
    adapters.prepare_data = lambda *a, **k: data
    try:
        with tempfile.TemporaryDirectory() as tmp:
            train_experiment(experiment_from_mapping(mapping), Path(tmp) / "run", device="cpu")
            rows = [
                json.loads(line) for line in (Path(tmp) / "run" / "metrics.jsonl").read_text().splitlines()
            ]
    finally:
        adapters.prepare_data = original
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


def run() -> list[dict]:
    rows = compare("signnet conv, 64x64 synthetic", CONV, synthetic_images(), 0.97)
    rows += compare(
        "spiral MLP", MLP, spiral_data(), 0.90, repeats=2 * REPEATS
    )  # cheap: more tries, less noise
    rows.append(peak_memory())
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
