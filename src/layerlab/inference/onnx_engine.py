"""A trained run as a serving engine: an ONNX Runtime session checked against the eager model, or eager
PyTorch when the export is impossible (the reason is kept and reported).

The ONNX file is one self-contained file (weights embedded), exported once per checkpoint content
(``serving-<sha>.onnx`` in the run's ``export/`` folder, else a cache folder) and checked at batch 1
and at ``PARITY_BATCH`` (max abs difference of the logits <= ``PARITY_TOLERANCE``) every time it is
loaded, before it answers anything.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from layerlab.core import runlayout
from layerlab.core.errors import ExportError, LayerlabError
from layerlab.inference.trained import TrainedModel, load_trained

log = logging.getLogger(__name__)

ONNXRUNTIME = "onnxruntime"
EAGER = "eager"
PARITY_TOLERANCE = 1e-5  # max abs difference on logits, ONNX Runtime against eager
PARITY_BATCH = 8  # the larger batch of the check (batch 1 is always checked)
SERVING_DIR = "serving"  # under the run's export/ folder


@dataclass
class Engine:
    """Logits for a preprocessed batch, by ONNX Runtime or eager PyTorch.

    ``run(x)`` takes a float32 ``(N, *input_shape)`` array and returns ``(N, classes)`` logits; it
    is safe to call from several threads (ONNX Runtime sessions and eval-mode modules under
    ``no_grad`` are).
    """

    name: str  # ONNXRUNTIME or EAGER
    run: Callable[[np.ndarray], np.ndarray]
    classes: list[str]
    input_shape: list[int]
    preprocessing: dict
    reason: str | None = None  # why eager (None for ONNX Runtime)
    parity: dict = field(default_factory=dict)  # {"batch_1": diff, "batch_8": diff}
    model_file: Path | None = None  # the checked .onnx file
    key: str = ""  # content hash of what runs (the .onnx file, else the checkpoint)
    threads: int = 1

    def describe(self) -> dict:
        """What the responses and /readyz say about the engine (no server path)."""
        info = {"engine": self.name, "parity": self.parity, "threads": self.threads}
        if self.reason:
            info["engine_reason"] = self.reason
        return info


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def serving_dir(checkpoint: Path) -> Path:
    """Where the checkpoint's serving files go: ``RUN/export/serving``, else a per-user cache folder."""
    candidates = [runlayout.run_dir_of_checkpoint(checkpoint) / runlayout.EXPORT_DIR / SERVING_DIR]
    candidates.append(Path(tempfile.gettempdir()) / f"layerlab-serving-{os.getuid()}")
    for folder in candidates:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(folder, os.W_OK):
            return folder
    raise ExportError("no folder to write the serving model in")


def onnx_session(model: Path | bytes, *, threads: int = 1):
    """An ONNX Runtime CPU session with ``threads`` intra-op threads (one inter-op thread)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def eager_runner(model: torch.nn.Module) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> logits`` through the eager model (CPU, no autograd)."""
    device = next(model.parameters()).device

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            out = model(torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)).to(device))
        return out.float().cpu().numpy()

    return run


def session_runner(session) -> Callable[[np.ndarray], np.ndarray]:
    """``x -> logits`` through an ONNX Runtime session (its first input and output)."""
    name = session.get_inputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    return run


def parity_check(
    run: Callable[[np.ndarray], np.ndarray],
    eager: Callable[[np.ndarray], np.ndarray],
    input_shape: list[int],
    *,
    batches: tuple[int, ...] = (1, PARITY_BATCH),
    tolerance: float = PARITY_TOLERANCE,
) -> dict:
    """Max abs difference of the logits of ``run`` against ``eager`` per batch size; ExportError above
    ``tolerance`` or on a shape mismatch. Inputs are fixed random normals (seeded)."""
    rng = np.random.default_rng(0)
    diffs = {}
    for batch in batches:
        x = rng.standard_normal((batch, *input_shape), dtype=np.float32)
        want = eager(x)
        got = np.asarray(run(x))
        if got.shape != want.shape:
            raise ExportError(
                f"the ONNX model gives shape {list(got.shape)} at batch {batch}, eager gives {list(want.shape)}"
            )
        diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
        diffs[f"batch_{batch}"] = diff
        if not diff <= tolerance:
            raise ExportError(
                f"the ONNX model differs from the eager model by {diff:.3g} at batch {batch} "
                f"(allowed {tolerance:g})"
            )
    return diffs


def export_serving_onnx(trained: TrainedModel, out: Path) -> str:
    """Export ``trained`` to ``out`` as one self-contained ONNX file with a dynamic batch axis.

    The legacy (TorchScript-based) exporter first (about 6x faster here than the dynamo one on signnet),
    the dynamo exporter when it refuses. Written to a scratch name and renamed, so concurrent loaders
    never see half a file. Returns the exporter used; raises ExportError when neither can export.
    """
    from layerlab.inference.export import _onnx_single_file, _quiet, deploy_metadata

    x = torch.randn(2, *trained.input_shape, generator=torch.Generator().manual_seed(0))
    attempts = []
    for exporter in ("legacy", "dynamo"):
        try:
            with tempfile.TemporaryDirectory(prefix="layerlab-serve-") as scratch, _quiet():
                raw = Path(scratch) / "model.onnx"
                if exporter == "legacy":
                    torch.onnx.export(
                        trained.model,
                        (x,),
                        str(raw),
                        dynamo=False,
                        input_names=["x"],
                        output_names=["logits"],
                        dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}},
                    )
                else:
                    torch.onnx.export(
                        trained.model,
                        (x,),
                        str(raw),
                        dynamo=True,
                        external_data=False,
                        dynamic_shapes=({0: torch.export.Dim("batch")},),
                        verbose=False,
                    )
                partial = out.with_name(f".{out.name}.{os.getpid()}.{threading.get_ident()}.part")
                _onnx_single_file(raw, partial, deploy_metadata(trained))
            os.replace(partial, out)
            return exporter
        except ExportError:
            raise
        except Exception as exc:  # an op one exporter cannot translate; the other may
            text = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
            attempts.append(f"{exporter}: {text}")
    raise ExportError(f"onnx export impossible ({'; '.join(attempts)})")


def load_engine(
    run_or_trained: str | Path | TrainedModel,
    *,
    threads: int = 1,
    prefer: str = ONNXRUNTIME,
    cache_dir: Path | None = None,
    eager_reason: str | None = None,
) -> Engine:
    """The run's serving engine: ONNX Runtime when the export loads and passes the parity check, else eager.

    Args:
        run_or_trained: a run directory, a checkpoint file or an already loaded ``TrainedModel``.
        threads: intra-op threads of the ONNX Runtime session.
        prefer: ``onnxruntime`` or ``eager`` (eager on request: the reason says so).
        cache_dir: where the ``.onnx`` file is kept (default ``RUN/export/serving``).
        eager_reason: with ``prefer="eager"``, the reason to report (e.g. the parent process's fallback).
    """
    trained = (
        run_or_trained
        if isinstance(run_or_trained, TrainedModel)
        else load_trained(run_or_trained, device="cpu")
    )
    eager = eager_runner(trained.model)
    common = {
        "classes": list(trained.classes),
        "input_shape": list(trained.input_shape),
        "preprocessing": dict(trained.preprocessing),
    }
    checkpoint_sha = file_sha256(trained.checkpoint)
    if prefer == EAGER:
        reason = eager_reason or "eager requested"
        return Engine(EAGER, eager, reason=reason, key=checkpoint_sha, **common)
    if not trained.input_shape:
        return Engine(
            EAGER,
            eager,
            reason="the checkpoint does not record its input shape",
            key=checkpoint_sha,
            **common,
        )
    folder = Path(cache_dir) if cache_dir else None
    try:
        folder = folder or serving_dir(trained.checkpoint)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"serving-{checkpoint_sha[:20]}.onnx"
        if not path.is_file():
            exporter = export_serving_onnx(trained, path)
            log.info("exported %s for serving with the %s exporter", path.name, exporter)
        session = onnx_session(path, threads=threads)
        run = session_runner(session)
        parity = parity_check(run, eager, trained.input_shape)
    except LayerlabError as exc:
        reason = _without(exc.one_line(), folder)
        log.warning("serving %s eagerly: %s", trained.checkpoint.name, reason)
        return Engine(EAGER, eager, reason=reason, key=checkpoint_sha, **common)
    except Exception as exc:  # onnxruntime cannot load the graph, a full disk ...
        text = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        reason = _without(f"onnx runtime unavailable for this model: {text}", folder)
        log.warning("serving %s eagerly: %s", trained.checkpoint.name, reason)
        return Engine(EAGER, eager, reason=reason, key=checkpoint_sha, **common)
    return Engine(
        ONNXRUNTIME,
        run,
        parity=parity,
        model_file=path,
        key=file_sha256(path),
        threads=threads,
        **common,
    )


def _without(text: str, folder: Path | None) -> str:
    """``text`` without a server folder's path (reasons are shown to users)."""
    return text.replace(f"{folder}/", "").replace(str(folder), "") if folder else text


def rank(logits: np.ndarray, classes: list[str], top_k: int, *, probabilities: bool = False) -> list[dict]:
    """Per row of ``logits``: ``{"top": [{"class", "probability"}]}`` (softmax, ``top_k`` best first), plus
    every class's probability with ``probabilities`` (the shape of ``inference.predict.top_classes``)."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    probs = np.exp(shifted)
    probs /= probs.sum(axis=1, keepdims=True)
    k = max(1, min(int(top_k), len(classes)))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    results = []
    for row, idx in zip(probs, order, strict=True):
        result = {"top": [{"class": classes[i], "probability": round(float(row[i]), 6)} for i in idx]}
        if probabilities:
            result["probabilities"] = [round(float(p), 6) for p in row]
        results.append(result)
    return results
