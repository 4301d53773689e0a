"""Fine-tuning: initialize from an earlier run by layer name and shape, freeze layers, scale lrs."""

from __future__ import annotations

from pathlib import Path

import torch

from layerlab.core.configtree import suggest
from layerlab.core.errors import ConfigError
from layerlab.train.checkpoint import checkpoint_load, resolve_checkpoint
from layerlab.train.config import ModelConfig


def layer_of(param_name: str) -> str:
    """The layer a parameter belongs to: its name without the last component (``conv1.weight`` -> ``conv1``)."""
    return param_name.rsplit(".", 1)[0] if "." in param_name else param_name


def init_from(model: torch.nn.Module, source: str | Path, skip: list[str] | tuple[str, ...] = ()) -> dict:
    """Copy every parameter/buffer whose name and shape match from an earlier run or checkpoint.

    Args:
        model: the freshly built network (edited in place).
        source: a run directory (its best checkpoint) or a checkpoint file.
        skip: layer names (or prefixes) kept at their fresh initialization (``model.init_skip``:
            a new classifier head even when its shape matches the source's).

    Returns:
        ``{"source", "loaded": [layer...], "skipped": [{"layer", "reason"}]}``.
    """
    path = resolve_checkpoint(source)
    theirs = checkpoint_load(path)["model"]
    ours = model.state_dict()
    take, loaded, skipped = {}, set(), {}
    for name, tensor in ours.items():
        layer = layer_of(name)
        if any(_matches(prefix, name) for prefix in skip):
            skipped[layer] = "model.init_skip"
        elif name not in theirs:
            skipped.setdefault(layer, "not in the source")
        elif tuple(theirs[name].shape) != tuple(tensor.shape):
            skipped[layer] = f"shape {tuple(theirs[name].shape)} in the source vs {tuple(tensor.shape)} here"
        else:
            take[name] = theirs[name]
            loaded.add(layer)
    loaded -= set(skipped)  # a layer counts as loaded only when every tensor of it matched
    take = {name: t for name, t in take.items() if layer_of(name) in loaded}
    model.load_state_dict(take, strict=False)
    return {
        "source": str(path),
        "loaded": sorted(loaded),
        "skipped": [{"layer": layer, "reason": reason} for layer, reason in sorted(skipped.items())],
    }


def _matches(prefix: str, name: str) -> bool:
    return name == prefix or name.startswith(prefix)


def _check_prefixes(prefixes, names: list[str], key: str) -> None:
    for prefix in prefixes:
        if not any(_matches(prefix, n) for n in names):
            layers = sorted({layer_of(n) for n in names})
            close = suggest(prefix, layers)
            hint = f"did you mean '{close}'?" if close else f"layers: {', '.join(layers[:20])}"
            raise ConfigError(f"no layer matches '{prefix}'", hint=hint, where=f"model.{key}")


def frozen_modules(model: torch.nn.Module, prefixes: list[str]) -> list[torch.nn.Module]:
    """The sub-modules a ``freeze`` prefix names whole: kept in eval mode while the rest trains.

    A frozen batch-norm layer must not update its running statistics, nor a frozen block apply its
    dropout: the training loop switches these back to eval after every ``model.train()``.
    """
    return [m for name, m in model.named_modules() if name and any(_matches(p, name) for p in prefixes)]


def param_groups(
    model: torch.nn.Module, cfg: ModelConfig, loaded_layers: list[str] = ()
) -> tuple[list[dict], list[str]]:
    """Freeze chosen layers and group the other parameters by lr factor.

    Args:
        model: the network (``requires_grad`` is switched off for frozen parameters).
        cfg: the model section (freeze, lr_multipliers, pretrained_lr_multiplier).
        loaded_layers: layers that init_from loaded (they take ``pretrained_lr_multiplier``).

    Returns:
        ``(groups, frozen)``: ``[{"params", "lr_factor"}]`` and the frozen parameter names. The longest
        matching ``lr_multipliers`` prefix wins over ``pretrained_lr_multiplier``.
    """
    names = [n for n, _ in model.named_parameters()]
    _check_prefixes(cfg.freeze, names, "freeze")
    _check_prefixes(cfg.init_skip, names, "init_skip")
    _check_prefixes(cfg.lr_multipliers, names, "lr_multipliers")
    loaded = set(loaded_layers)
    by_factor: dict[float, list] = {}
    frozen = []
    for name, param in model.named_parameters():
        if any(_matches(p, name) for p in cfg.freeze):
            param.requires_grad_(False)
            frozen.append(name)
            continue
        factor = 1.0
        if cfg.pretrained_lr_multiplier is not None and layer_of(name) in loaded:
            factor = cfg.pretrained_lr_multiplier
        matching = [p for p in cfg.lr_multipliers if _matches(p, name)]
        if matching:
            factor = cfg.lr_multipliers[max(matching, key=len)]
        if factor < 0:
            raise ConfigError(f"lr factor {factor} is negative", where="model.lr_multipliers")
        by_factor.setdefault(float(factor), []).append(param)
    if not by_factor:
        raise ConfigError("every layer is frozen: nothing to train", hint="remove a prefix from model.freeze")
    # the factor-1 group first, so base_lr() reads the config's lr from group 0
    order = sorted(by_factor, key=lambda f: (f != 1.0, f))
    return [{"params": by_factor[f], "lr_factor": f} for f in order], frozen
