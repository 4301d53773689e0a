"""Numeric precision of the training step: autocast, the fp16 grad scaler and channels-last inputs.

``train.precision`` is ``32`` (plain float32: no autocast, no scaler, the exact code path of a
float32 run), ``bf16`` (autocast to bfloat16; on the CPU too) or ``16-mixed`` (autocast to float16
with a ``torch.amp.GradScaler``; CUDA only). Logits are cast back to float32 before the loss and the
metrics. The scaler's state goes into checkpoints so a resumed run continues exactly.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

import torch

from layerlab.core.errors import ConfigError
from layerlab.train.config import PRECISIONS

logger = logging.getLogger("layerlab.train")

__all__ = ["PRECISIONS", "CompiledOrEager", "Precision", "check_precision", "resolve_channels_last"]
_DTYPES = {"bf16": torch.bfloat16, "16-mixed": torch.float16}


def check_precision(kind: str, device: torch.device | str) -> None:
    """Refuse a precision the device cannot train in (a clear ConfigError, never a traceback)."""
    if kind not in PRECISIONS:
        raise ConfigError(
            f"'{kind}' is not a precision",
            hint=f"choose one of: {', '.join(PRECISIONS)}",
            where="train.precision",
        )
    if kind == "16-mixed" and torch.device(device).type != "cuda":
        raise ConfigError(
            f"precision 16-mixed needs a CUDA device (this run trains on {torch.device(device).type}): "
            "float16 autocast is not well supported there",
            hint="use --set train.precision=bf16 (or 32)",
            where="train.precision",
        )


def has_conv2d(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def resolve_channels_last(setting: bool | None, model: torch.nn.Module, device: torch.device | str) -> bool:
    """``train.channels_last``: None (auto) is on for a CUDA network with a 2-D convolution."""
    if setting is not None:
        return bool(setting)
    return torch.device(device).type == "cuda" and has_conv2d(model)


class Precision:
    """The step's autocast context, optional grad scaler and input memory format.

    With ``kind == "32"`` and ``channels_last`` off every method is the identity / the plain call,
    so the float32 path is bitwise what it was without this class.
    """

    def __init__(self, kind: str = "32", device: torch.device | str = "cpu", *, channels_last: bool = False):
        check_precision(kind, device)
        self.kind = kind
        self.device_type = torch.device(device).type
        self.dtype = _DTYPES.get(kind)
        self.channels_last = channels_last
        self.scaler = (
            torch.amp.GradScaler("cuda") if kind == "16-mixed" and self.device_type == "cuda" else None
        )

    @property
    def enabled(self) -> bool:
        """Whether autocast is on (``bf16`` or ``16-mixed``)."""
        return self.dtype is not None

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.dtype)

    def inputs(self, xb: torch.Tensor) -> torch.Tensor:
        if self.channels_last and xb.dim() == 4:
            return xb.contiguous(memory_format=torch.channels_last)
        return xb

    def logits(self, out: torch.Tensor) -> torch.Tensor:
        return out.float() if self.dtype is not None else out

    def forward(self, model: torch.nn.Module, xb: torch.Tensor) -> torch.Tensor:
        """``model(xb)`` under autocast, logits in float32."""
        xb = self.inputs(xb)
        with self.autocast():
            out = model(xb)
        return self.logits(out)

    def backward_step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer,
        params: Sequence[torch.nn.Parameter] | None,
        grad_clip: float | None,
    ) -> None:
        """Backward, optional clipping (of unscaled gradients) and the optimizer step."""
        scaler = self.scaler
        if scaler is None:
            loss.backward()
            if params is not None:
                torch.nn.utils.clip_grad_norm_(params, grad_clip)
            optimizer.step()
            return
        scaler.scale(loss).backward()
        if params is not None:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()

    def state_dict(self) -> dict | None:
        return self.scaler.state_dict() if self.scaler is not None else None

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)

    def describe(self) -> dict:
        return {
            "precision": self.kind,
            "grad_scaler": self.scaler is not None,
            "channels_last": self.channels_last,
        }


FLOAT32 = Precision()


class CompiledOrEager(torch.nn.Module):
    """``torch.compile(module)`` for the training steps, falling back to eager ``module`` (with one
    warning) when compiling fails: at ``torch.compile`` or at the first step, where the graph is
    built (no C++ compiler, an unsupported layer ...). ``module`` stays the plain network."""

    def __init__(self, module: torch.nn.Module, warn):
        super().__init__()
        self.module = module
        self.warn = warn
        try:
            compiled = torch.compile(module)
        except Exception as exc:  # torch.compile itself refused (platform, Python version)
            compiled = None
            self.fell_back(exc)
        self.__dict__["compiled"] = compiled  # not a submodule: parameters() are the module's once

    @property
    def active(self) -> bool:
        """Whether the steps still run compiled."""
        return self.__dict__["compiled"] is not None

    def fell_back(self, exc: BaseException) -> None:
        self.__dict__["compiled"] = None
        logger.info("torch.compile failed: %s", exc)  # the detail (compiler output, paths) stays in the log
        self.warn(f"train.compile: torch.compile failed ({type(exc).__name__}); training without it (eager)")

    def forward(self, *args, **kwargs):
        compiled = self.__dict__["compiled"]
        if compiled is not None:
            try:
                return compiled(*args, **kwargs)
            except Exception as exc:
                self.fell_back(exc)
        return self.module(*args, **kwargs)
