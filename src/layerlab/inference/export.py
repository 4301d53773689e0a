"""Export a trained model (safetensors, TorchScript, ONNX), checked against the eager model's outputs."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path

import torch

from layerlab.core import runlayout
from layerlab.core.errors import ExportError
from layerlab.inference.trained import TrainedModel, load_trained
from layerlab.train import adapters
from layerlab.train.weights import weights_tensors

FORMATS = {"safetensors": "safetensors", "torchscript": "pt", "onnx": "onnx"}
TOLERANCE = 1e-4  # max abs difference allowed, relative to 1 + the largest eager output
CHECK_BATCH = 5  # examples in the comparison batch (not a power of two, to catch fixed-batch exports)
EXTRA_FILE = "layerlab.json"  # beside a TorchScript model (``torch.jit.load(..., _extra_files=...)``)
ONNX_MAX_BYTES = 2**31 - 1  # protobuf's limit on one file: weights above it cannot be embedded


def deploy_metadata(trained: TrainedModel) -> dict:
    """What a deployed model needs besides its weights: class names (output order) and preprocessing.

    Written into every export (safetensors metadata, TorchScript extra file ``layerlab.json``, ONNX
    ``metadata_props``), so the one exported file is the whole model.
    """
    pre = trained.preprocessing or {}
    train = (trained.config or {}).get("train") or {}
    task = train.get("task") or "classification"
    return {
        "format": "layerlab-export-1",
        "task": task,  # classification: class scores; regression: the values; reconstruction: the input
        # what the outputs mean: bce's are logits, whose sigmoid is the reconstruction
        "outputs": "logits: sigmoid(output) is the prediction" if train.get("loss") == "bce" else task,
        "classes": list(trained.classes),
        "input_shape": list(trained.input_shape),
        "preprocessing": {
            "kind": pre.get("kind"),
            "size": pre.get("size"),
            "channels": pre.get("channels"),
            "features": pre.get("features"),
            "normalize": pre.get("normalize"),
            "mean": pre.get("mean"),
            "std": pre.get("std"),
            # images: resized to size, channels (1 grey, 3 RGB), uint8 scaled to [0, 1], then this
            "formula": "(x - mean) / std, per channel (images) or per feature (vectors)",
        },
    }


def _default_out(trained: TrainedModel, fmt: str) -> Path:
    return (
        runlayout.run_dir_of_checkpoint(trained.checkpoint) / runlayout.EXPORT_DIR / f"model.{FORMATS[fmt]}"
    )


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
        "layerlab": json.dumps(deploy_metadata(trained)),
    }
    save_file(weights_tensors(trained.model), str(out), metadata=metadata)
    fresh = adapters.network_from_dict(trained.network)
    fresh.load_state_dict(load_file(str(out)))
    with torch.no_grad():
        return _check("safetensors", eager, fresh.eval()(x), out)


def _torchscript(trained: TrainedModel, out: Path, x: torch.Tensor, eager: torch.Tensor) -> float:
    extra = {EXTRA_FILE: json.dumps(deploy_metadata(trained))}
    try:
        with _quiet():
            traced = torch.jit.trace(trained.model, x, check_trace=False)
            torch.jit.save(traced, str(out), _extra_files=extra)
    except Exception as exc:
        raise ExportError(f"torchscript export failed: {str(exc).splitlines()[0][:200]}") from None
    with _quiet():
        loaded = torch.jit.load(str(out))
    with torch.no_grad():
        return _check("torchscript", eager, loaded(x), out)


def _onnx_single_file(exported: Path, out: Path, metadata: dict) -> None:
    """Rewrite an exported graph as one self-contained file: weights embedded (no ``.onnx.data``
    beside it, which the dashboard would not offer and onnxruntime needs), layerlab's metadata added."""
    import onnx

    model = onnx.load(str(exported), load_external_data=True)  # pulls in a ``.data`` file if written
    if model.ByteSize() > ONNX_MAX_BYTES:
        raise ExportError(
            f"the model's weights ({model.ByteSize() / 2**30:.1f} GiB) are too large for one ONNX file",
            hint="use --format safetensors or torchscript",
        )
    entries = {
        "layerlab": json.dumps(metadata),
        "classes": json.dumps(metadata["classes"]),
        "preprocessing": json.dumps(metadata["preprocessing"]),
    }
    kept = [p for p in model.metadata_props if p.key not in entries]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    for key, value in entries.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out), save_as_external_data=False)


def _onnx(trained: TrainedModel, out: Path, x: torch.Tensor, eager: torch.Tensor) -> tuple[float, str]:
    import onnxruntime

    attempts = []
    for exporter in ("dynamo", "legacy"):
        try:
            # Exported into a scratch folder, so a ``.data`` file never lands beside ``out``.
            with tempfile.TemporaryDirectory(prefix="layerlab-onnx-") as scratch:
                raw = Path(scratch) / "model.onnx"
                with _quiet():
                    if exporter == "dynamo":
                        batch = torch.export.Dim("batch")
                        torch.onnx.export(
                            trained.model,
                            (x,),
                            str(raw),
                            dynamo=True,
                            external_data=False,
                            dynamic_shapes=({0: batch},),
                            verbose=False,
                        )
                    else:
                        torch.onnx.export(
                            trained.model,
                            (x,),
                            str(raw),
                            dynamo=False,
                            input_names=["x"],
                            output_names=["logits"],
                            dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                        )
                    _onnx_single_file(raw, out, deploy_metadata(trained))
            # From bytes: no folder to find a weights file in, so this proves the file stands alone.
            session = onnxruntime.InferenceSession(out.read_bytes(), providers=["CPUExecutionProvider"])
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
        The path written: one self-contained file (ONNX weights embedded, no ``.onnx.data``) that
        carries the class names and preprocessing (see ``deploy_metadata``). Raises ExportError
        when outputs differ beyond tolerance.
    """
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format '{fmt}'", hint=f"choose one of: {', '.join(FORMATS)}")
    trained = load_trained(run, device="cpu")
    if not trained.input_shape:
        raise ExportError(f"checkpoint '{trained.checkpoint}' does not record the input shape")
    path = Path(out) if out else _default_out(trained, fmt)
    _check_writable(path)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(CHECK_BATCH, *trained.input_shape, generator=generator)
    with torch.no_grad():
        eager = trained.model(x).float()
    try:
        if fmt == "safetensors":
            _safetensors(trained, path, x, eager)
        elif fmt == "torchscript":
            _torchscript(trained, path, x, eager)
        else:
            _onnx(trained, path, x, eager)
    except OSError as exc:  # a full disk, a folder removed meanwhile ...
        raise ExportError(
            f"cannot write '{path}': {exc.strerror or type(exc).__name__}", hint=WRITE_HINT
        ) from None
    return path


WRITE_HINT = "choose another --out (a file in a folder you can write)"


def _check_writable(path: Path) -> None:
    """Refuse an --out that cannot be written before any export work, as one ExportError line."""
    if path.is_dir():
        raise ExportError(
            f"cannot write '{path}': it is a directory", hint="give a file name, e.g. model.onnx"
        )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(
            f"cannot write '{path}': cannot create its folder ({exc.strerror or type(exc).__name__})",
            hint=WRITE_HINT,
        ) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ExportError(f"cannot write '{path}': permission denied", hint=WRITE_HINT)
