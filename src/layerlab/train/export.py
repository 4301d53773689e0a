"""Export a trained model (safetensors, TorchScript, ONNX), checked against the eager model's outputs."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from pathlib import Path

import torch

from layerlab.core.errors import ExportError
from layerlab.train import adapters
from layerlab.train.trained import TrainedModel, load_trained
from layerlab.train.weights import weights_tensors

FORMATS = {"safetensors": "safetensors", "torchscript": "pt", "onnx": "onnx"}
TOLERANCE = 1e-4  # max abs difference allowed, relative to 1 + the largest eager output
CHECK_BATCH = 5  # examples in the comparison batch (not a power of two, to catch fixed-batch exports)


def _default_out(trained: TrainedModel, fmt: str) -> Path:
    folder = trained.checkpoint.parent
    run_dir = folder.parent if folder.name == "checkpoints" else folder
    return run_dir / "export" / f"model.{FORMATS[fmt]}"


def _check(name: str, eager: torch.Tensor, exported, out: Path) -> float:
    exported = torch.as_tensor(exported).float()
    if tuple(exported.shape) != tuple(eager.shape):
        raise ExportError(
            f"{name} export '{out}' gives shape {tuple(exported.shape)}, eager gives {tuple(eager.shape)}"
        )
    diff = float((exported - eager).abs().max())
    limit = TOLERANCE * (1.0 + float(eager.abs().max()))
    if not diff <= limit:
        raise ExportError(
            f"{name} export '{out}' differs from the eager model by {diff:.3g} (allowed {limit:.3g})",
            hint="report the layer kinds in the network; use --format safetensors meanwhile",
        )
    return diff


@contextlib.contextmanager
def _quiet():
    """The exporters print progress and warnings meant for their developers; keep stdout for the CLI."""
    onnx_logger = logging.getLogger("torch.onnx")
    level = onnx_logger.level
    onnx_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        onnx_logger.setLevel(level)


def _safetensors(trained: TrainedModel, out: Path, x: torch.Tensor, eager: torch.Tensor) -> float:
    from safetensors.torch import load_file, save_file

    metadata = {
        "format": "pt",
        "network": json.dumps(trained.network),
        "classes": json.dumps(trained.classes),
        "preprocessing": json.dumps(trained.preprocessing),
    }
    save_file(weights_tensors(trained.model), str(out), metadata=metadata)
    fresh = adapters.network_from_dict(trained.network)
    fresh.load_state_dict(load_file(str(out)))
    with torch.no_grad():
        return _check("safetensors", eager, fresh.eval()(x), out)


def _torchscript(trained: TrainedModel, out: Path, x: torch.Tensor, eager: torch.Tensor) -> float:
    try:
        with _quiet():
            traced = torch.jit.trace(trained.model, x, check_trace=False)
            torch.jit.save(traced, str(out))
    except Exception as exc:
        raise ExportError(f"torchscript export failed: {str(exc).splitlines()[0][:200]}") from None
    with _quiet():
        loaded = torch.jit.load(str(out))
    with torch.no_grad():
        return _check("torchscript", eager, loaded(x), out)


def _onnx(trained: TrainedModel, out: Path, x: torch.Tensor, eager: torch.Tensor) -> tuple[float, str]:
    import onnxruntime

    attempts = []
    for exporter in ("dynamo", "legacy"):
        try:
            with _quiet():
                if exporter == "dynamo":
                    batch = torch.export.Dim("batch")
                    torch.onnx.export(
                        trained.model,
                        (x,),
                        str(out),
                        dynamo=True,
                        dynamic_shapes=({0: batch},),
                        verbose=False,
                    )
                else:
                    torch.onnx.export(
                        trained.model,
                        (x,),
                        str(out),
                        dynamo=False,
                        input_names=["x"],
                        output_names=["logits"],
                        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                    )
            session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
            got = session.run(None, {session.get_inputs()[0].name: x.cpu().numpy()})[0]
            return _check("onnx", eager, got, out), exporter
        except ExportError:
            raise
        except Exception as exc:  # the dynamo exporter rejects some layers; the legacy one may not
            attempts.append(
                f"{exporter}: {str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__}"
            )
    raise ExportError(
        f"onnx export failed ({'; '.join(attempts)})", hint="use --format torchscript or safetensors"
    )


def export_model(run: str | Path, fmt: str, out: str | Path | None = None) -> Path:
    """Write the run's model in ``fmt`` and check it matches the eager model on a batch.

    Args:
        run: a run directory (its best checkpoint) or a checkpoint file.
        fmt: ``safetensors``, ``torchscript`` or ``onnx``.
        out: the file to write (default ``RUN/export/model.<ext>``).

    Returns:
        The path written. Raises ExportError when outputs differ beyond tolerance.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'", hint=f"choose one of: {', '.join(FORMATS)}")
    trained = load_trained(run, device="cpu")
    if not trained.input_shape:
        raise ExportError(f"checkpoint '{trained.checkpoint}' does not record the input shape")
    path = Path(out) if out else _default_out(trained, fmt)
    path.parent.mkdir(parents=True, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(CHECK_BATCH, *trained.input_shape, generator=generator)
    with torch.no_grad():
        eager = trained.model(x).float()
    if fmt == "safetensors":
        _safetensors(trained, path, x, eager)
    elif fmt == "torchscript":
        _torchscript(trained, path, x, eager)
    else:
        _onnx(trained, path, x, eager)
    return path
