"""How well an autoencoder reconstructs: test MSE per pixel beside PCA and the noisy input, and a grid.

For a reconstruction run (``train.task: reconstruction``) the report holds the test MSE per value of
the network's reconstructions (of the corrupted test inputs when ``data.noise`` is set: denoising),
the MSE of scikit-learn's PCA with as many components as the code layer has units (fitted on the
train split), and for denoising the MSE of the noisy input itself and of PCA applied to it. The grid
shows test examples: the input, the noisy input (denoising) and the reconstruction, one row each.
``ReconstructionReport`` writes both files when a run ends (``reconstruction.json`` and
``reconstruction.png``, names in ``core.runlayout``); ``report_for_run`` writes them afterwards.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import torch

from layerlab.core.runlayout import NETWORK, RECONSTRUCTION_GRID, RECONSTRUCTION_REPORT
from layerlab.train.callbacks import Callback
from layerlab.train.checkpoint import write_atomic
from layerlab.train.tasks import RECONSTRUCTION, task_of

CODE_LAYER = "code"  # the presets' name of the code layer
GRID_EXAMPLES = 10  # test examples shown in the grid
EXACT = 1e-12  # an MSE below this is float rounding of an exact reconstruction
NOISE_STREAM = 7919  # the report's corruption of the test split: its own stream of the run's seed


def code_size(summary: dict | None, layer: str | None = None) -> int | None:
    """Units of the code layer (``layer``, else the one named ``code``) from a network summary."""
    for row in (summary or {}).get("rows", []):
        if row.get("name") == (layer or CODE_LAYER):
            return math.prod(row.get("output_shape") or [0]) or None
    return None


def _flat(x: torch.Tensor) -> np.ndarray:
    return x.detach().float().cpu().reshape(len(x), -1).numpy().astype(np.float64)


def pca_mse(train_x: torch.Tensor, test_x: torch.Tensor, components: int, target: torch.Tensor) -> float:
    """MSE per value of PCA's reconstruction of ``test_x`` against ``target`` (PCA fitted on ``train_x``).

    Args:
        train_x: the training inputs (clean).
        test_x: the inputs to reconstruct (clean, or noisy for the denoising comparison).
        components: principal components kept (the autoencoder's code size), at most the number of
            values per example and of training examples.
        target: what the reconstruction should be (the clean test inputs).
    """
    from sklearn.decomposition import PCA

    train = _flat(train_x)
    components = max(1, min(components, train.shape[1], len(train)))
    pca = PCA(n_components=components, svd_solver="full").fit(train)
    recon = pca.inverse_transform(pca.transform(_flat(test_x)))
    return float(np.mean((recon - _flat(target)) ** 2))


@torch.no_grad()
def reconstruct(model: torch.nn.Module, x: torch.Tensor, task, batch_size: int = 512) -> torch.Tensor:
    """The model's reconstructions of ``x`` in eval mode (``task.output``: sigmoid of bce's logits)."""
    model.eval()
    device = next(model.parameters()).device
    parts = [
        task.output(model(x[i : i + batch_size].to(device)).float()).cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(parts) if parts else x.new_zeros((0, *x.shape[1:]))


def compare(model, task, train_x, test_x, *, noise=None, seed: int = 0, components: int | None = None):
    """The report's numbers and the grid's rows: ``(report dict, {"input", "noisy", "reconstruction"})``.

    Args:
        model: the trained autoencoder.
        task: the run's ``layerlab.train.tasks.Task``.
        train_x, test_x: the train and test inputs, as the run saw them (normalized).
        noise: ``data.noise`` (a NoiseConfig corrupts the test inputs: denoising), or None.
        seed: the run's seed (the test corruption draws from its own stream of it).
        components: PCA's components (the code size); None leaves PCA out.
    """
    from layerlab.data.config import NoiseConfig
    from layerlab.data.noise import corrupt

    train_x, test_x = _tensor(train_x), _tensor(test_x)
    denoising = isinstance(noise, NoiseConfig)
    noisy = None
    if denoising:
        generator = torch.Generator().manual_seed(int(seed) * 1_000_003 + NOISE_STREAM)
        noisy = corrupt(test_x.float().cpu(), noise, generator=generator)
    recon = reconstruct(model, noisy if denoising else test_x, task)
    clean = test_x.float().cpu()
    report: dict = {
        "task": RECONSTRUCTION,
        "test_examples": len(clean),
        "denoising": denoising,
        "noise": {"kind": noise.kind, "sigma": noise.sigma, "fraction": noise.fraction, "clip": noise.clip}
        if denoising
        else None,
        "test_mse": float(torch.mean((recon - clean) ** 2)),
        "code_size": components,
        "pca_mse": None,
        "noisy_input_mse": float(torch.mean((noisy - clean) ** 2)) if denoising else None,
        "pca_noisy_mse": None,
    }
    if components and len(train_x) >= 2:
        report["pca_mse"] = pca_mse(train_x, clean, components, clean)
        if denoising:
            report["pca_noisy_mse"] = pca_mse(train_x, noisy, components, clean)
    if report["pca_mse"] is not None and report["pca_mse"] < EXACT:
        report["pca_mse"] = 0.0  # as many components as values: PCA reconstructs exactly, no ratio
    if report["pca_mse"]:
        report["ratio_to_pca"] = report["test_mse"] / report["pca_mse"]
    if report["noisy_input_mse"]:
        report["ratio_to_noisy_input"] = report["test_mse"] / report["noisy_input_mse"]
    shown = slice(0, min(GRID_EXAMPLES, len(clean)))
    rows = {
        "input": clean[shown],
        "noisy": noisy[shown] if denoising else None,
        "reconstruction": recon[shown],
    }
    return report, rows


def _tensor(x) -> torch.Tensor:
    """A split's inputs as one tensor (a data view is read whole: reports are for small test sets)."""
    return x if isinstance(x, torch.Tensor) else x.materialize()


def grid_png(rows: dict) -> bytes:
    """PNG bytes of the grid: one row per kind (input, noisy, reconstruction), one column per example."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    shown = [(name, x) for name, x in rows.items() if x is not None and len(x)]
    columns = max((len(x) for _, x in shown), default=1)
    figure = Figure(figsize=(1.1 * columns + 1.2, 1.2 * len(shown) + 0.2), dpi=80)
    low = min(float(x.min()) for _, x in shown) if shown else 0.0
    high = max(float(x.max()) for _, x in shown) if shown else 1.0
    for r, (name, x) in enumerate(shown):
        for c in range(columns):
            ax = figure.add_subplot(len(shown), columns, r * columns + c + 1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
            if c < len(x):
                ax.imshow(_image(x[c]), cmap="gray", vmin=low, vmax=high, interpolation="nearest")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _image(example: torch.Tensor) -> np.ndarray:
    """One example as something imshow draws: (H, W), (H, W, 3), or a vector as a near-square strip."""
    a = example.numpy()
    if a.ndim == 3:
        return a[0] if a.shape[0] == 1 else np.clip(np.moveaxis(a[:3], 0, -1), a.min(), a.max())
    if a.ndim == 2:
        return a
    side = max(1, math.isqrt(a.size))
    return np.pad(a.ravel(), (0, -a.size % side)).reshape(-1, side)


def write_report(run_dir: str | Path, report: dict, rows: dict) -> dict:
    """Write ``reconstruction.json`` and ``reconstruction.png`` into ``run_dir``; the report."""
    run_dir = Path(run_dir)
    write_atomic(run_dir / RECONSTRUCTION_GRID, grid_png(rows))
    write_atomic(run_dir / RECONSTRUCTION_REPORT, json.dumps(report, indent=2).encode())
    return report


def read_report(run_dir: str | Path) -> dict | None:
    """The stored report of a run, or None when it has none (or it cannot be read)."""
    try:
        return json.loads((Path(run_dir) / RECONSTRUCTION_REPORT).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _network_summary(run_dir: Path) -> dict | None:
    try:
        return json.loads((run_dir / NETWORK).read_text(encoding="utf-8")).get("summary")
    except (OSError, ValueError):
        return None


class ReconstructionReport(Callback):
    """Writes the report of a reconstruction run when it ends (the trainer's best weights, its splits)."""

    def on_run_end(self, trainer, summary: dict) -> None:
        task = getattr(trainer, "task", None)
        if (
            task is None
            or task.name != RECONSTRUCTION
            or summary.get("status")
            not in (
                "completed",
                "early_stopped",
            )
        ):
            return
        test_x = trainer.splits["test"][0]
        if len(test_x) == 0:
            return
        cfg = trainer.cfg
        code_l1 = cfg.train.code_l1
        layers = trainer.network_summary or _network_summary(trainer.run_dir)
        components = code_size(layers, code_l1.layer if code_l1 else None)
        report, rows = compare(
            trainer.model,
            task,
            trainer.splits["train"][0],
            test_x,
            noise=cfg.data.noise,
            seed=cfg.seed,
            components=components,
        )
        trainer.before_write("reconstruction")
        write_report(trainer.run_dir, report, rows)


def report_for_run(run_dir: str | Path, *, device: str = "cpu", cache_dir: Path | None = None) -> dict:
    """Compute and write the report of a finished reconstruction run from its files (best checkpoint).

    Args:
        run_dir: the run directory.
        device: ``auto``, ``cpu`` or ``cuda``.
        cache_dir: where decoded datasets are cached.
    """
    from layerlab.core.errors import ConfigError
    from layerlab.inference.trained import load_trained
    from layerlab.train import adapters
    from layerlab.train.config import experiment_from_mapping

    run_dir = Path(run_dir)
    trained = load_trained(run_dir, device=device)
    cfg = experiment_from_mapping(trained.config)
    task = task_of(cfg.train)
    if task.name != RECONSTRUCTION:
        raise ConfigError(f"this run is a {task.name} run, not a reconstruction", where=str(run_dir))
    data = adapters.prepare_data(cfg.data, seed=cfg.seed, cache_dir=cache_dir)
    code_l1 = cfg.train.code_l1
    components = code_size(_network_summary(run_dir), code_l1.layer if code_l1 else None)
    report, rows = compare(
        trained.model,
        task,
        adapters.inputs_on(data.train_x, torch.device("cpu")),
        adapters.inputs_on(data.test_x, torch.device("cpu")),
        noise=cfg.data.noise,
        seed=cfg.seed,
        components=components,
    )
    return write_report(run_dir, report, rows)


def report_callbacks(cfg) -> list[Callback]:
    """The callbacks a training of ``cfg`` (an ExperimentConfig) adds for its files: the report of a
    reconstruction run, nothing for the other tasks."""
    return [ReconstructionReport()] if cfg is not None and cfg.train.task == RECONSTRUCTION else []
