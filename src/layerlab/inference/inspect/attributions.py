"""Attributions for one prediction (saliency, integrated gradients, Grad-CAM, occlusion) and their sanity.

Each method is Captum's (``captum.attr``), applied to one preprocessed example and reduced to one map
per pixel: the largest absolute input gradient over channels (saliency, Simonyan et al. 2014), the
channel sum of integrated gradients from an all-zero baseline (the preprocessed mean; signed), the
ReLU'd Grad-CAM of a conv layer upsampled bilinearly to the input, and the channel mean of the drop of
the target's logit when a square patch of every channel is set to zero (occlusion; signed; an 8x8
grid of patches).

Sanity, in the spirit of Adebayo et al. 2018 ("Sanity checks for saliency maps"), model-parameter
randomization: the same method on a copy of the model whose every layer is re-initialized (full
randomization: the end point of their cascade from the top layer down, one extra map per method). The
score is Spearman's rank correlation between the absolute values of the two maps; a method whose map
barely changes when the weights mean nothing (rho >= ``SANITY_THRESHOLD``) is flagged: it shows the
input (or the architecture), not what the model learned. Why 0.5: the maps then share at least a
quarter of their rank variance (rho squared), far above the |rho| <= 0.3 that gradients (and Grad-CAM) of a
trained small convnet keep against a randomized one here (docs/inspect.md), while a map that ignores
the model entirely (the input itself) scores 1.0. ``randomization="cascade"`` follows the paper's
cascade instead (one layer more at a time from the top; a map per layer).
"""

from __future__ import annotations

import copy
import io
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from layerlab.core.errors import ConfigError, DataError

METHODS = ("saliency", "integrated_gradients", "grad_cam", "occlusion")
SIGNED = frozenset({"integrated_gradients", "occlusion"})
SANITY_THRESHOLD = 0.5
RANDOMIZATION = "full"  # every layer re-initialized at once (the end of Adebayo's cascade)
RANDOMIZATIONS = ("full", "cascade")
IG_STEPS = 8  # Gauss-Legendre points: completeness error < 0.3% of f(x) - f(0) on the test convnet
OVERLAY_MIN_SIDE = 128  # pixels: small images (8x8 digits) are enlarged as blocks
OVERLAY_ALPHA = 0.55


class Skipped(Exception):
    """A method that does not apply to this model or input (the reason is shown in its place)."""


# ---- the methods: (model, x batch of one, target, layer module or None) -> map (H, W) or (F,) ----


def _saliency(model, x, target: int, layer) -> np.ndarray:
    from captum.attr import Saliency

    grads = Saliency(model).attribute(x, target=target, abs=True)[0]
    return _per_pixel(grads, reduce="max")


def _integrated_gradients(model, x, target: int, layer) -> np.ndarray:
    from captum.attr import IntegratedGradients

    attr = IntegratedGradients(model).attribute(
        x, baselines=0.0, target=target, n_steps=IG_STEPS, internal_batch_size=IG_STEPS
    )[0]
    return _per_pixel(attr, reduce="sum")


def _grad_cam(model, x, target: int, layer) -> np.ndarray:
    from captum.attr import LayerAttribution, LayerGradCam

    if x.dim() != 4:
        raise Skipped("Grad-CAM needs an image input (C, H, W)")
    if layer is None:
        raise Skipped("the network has no conv layer (no layer output of shape (C, h, w))")
    cam = LayerGradCam(model, layer).attribute(x, target=target, relu_attributions=True)
    if cam.dim() != 4:
        raise Skipped("the chosen layer's output is not a (C, h, w) map")
    cam = LayerAttribution.interpolate(cam, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    return cam[0].sum(0).detach().cpu().numpy().astype(np.float32)


def occlusion_window(shape: Sequence[int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Captum's sliding window and strides for one example of ``shape``: a square of an eighth of the
    shorter side (at least 2 pixels) over every channel, moved a whole window at a time (64 forward
    passes for any image: one batch); 1 for vectors."""
    if len(shape) == 1:
        return (1,), (1,)
    channels, height, width = shape
    side = min(max(2, min(height, width) // 8), height, width)
    return (channels, side, side), (channels, side, side)


def _occlusion(model, x, target: int, layer) -> np.ndarray:
    from captum.attr import Occlusion

    window, strides = occlusion_window(tuple(x.shape[1:]))
    attr = Occlusion(model).attribute(
        x, sliding_window_shapes=window, strides=strides, baselines=0.0, target=target,
        perturbations_per_eval=64,
    )[0]  # fmt: skip
    return _per_pixel(attr, reduce="mean")


REGISTRY: dict[str, Callable] = {
    "saliency": _saliency,
    "integrated_gradients": _integrated_gradients,
    "grad_cam": _grad_cam,
    "occlusion": _occlusion,
}


def _per_pixel(attr, *, reduce: str) -> np.ndarray:
    """One value per pixel of a (C, H, W) attribution (channels reduced), a vector's unchanged."""
    array = attr.detach().cpu().numpy().astype(np.float32)
    if array.ndim != 3:
        return array.reshape(-1)
    if reduce == "max":
        return np.abs(array).max(0)
    return array.sum(0) if reduce == "sum" else array.mean(0)


# ---- model, input, layer ----


def _module_of(trained):
    """A private eval-mode copy of the torch module (the cached model's gradients are never touched)."""
    import torch

    model = trained if isinstance(trained, torch.nn.Module) else getattr(trained, "model", None)
    if not isinstance(model, torch.nn.Module):
        raise DataError("attributions need a trained model (a TrainedModel or a torch module)")
    model = copy.deepcopy(model).cpu().eval()
    for parameter in model.parameters():
        parameter.requires_grad_(True)
    return model


def _batch_of_one(x, input_shape: Sequence[int] | None):
    """``x`` as a float tensor batch of one example, checked against the model's input shape."""
    import torch

    tensor = torch.as_tensor(np.asarray(x, dtype=np.float32) if not torch.is_tensor(x) else x).float()
    shape = tuple(input_shape or ())
    if shape and tuple(tensor.shape) == shape or not shape and tensor.dim() in (1, 3):
        tensor = tensor.unsqueeze(0)
    if tensor.dim() < 2 or tensor.shape[0] != 1 or (shape and tuple(tensor.shape[1:]) != shape):
        raise DataError(
            f"an example of shape {list(tensor.shape)} does not fit the model's input {list(shape)}",
            hint="give one preprocessed example, shaped like the run's input (C, H, W) or (F,)",
        )
    if not torch.isfinite(tensor).all():
        raise DataError("the example holds NaN or infinite values", hint="give finite pixel values")
    return tensor.detach().clone().requires_grad_(True)


def conv_layers(model, x) -> list[str]:
    """Names of the sub-modules whose output for ``x`` is a (N, C, h, w) map, in the order they run."""
    import torch

    order: list[str] = []
    hooks = []
    for name, module in model.named_modules():
        if not name or not isinstance(module, torch.nn.Conv2d):
            continue
        hooks.append(module.register_forward_hook(_recorder(order, name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return order


def _recorder(order: list[str], name: str):
    def hook(module, inputs, output):
        if getattr(output, "dim", lambda: 0)() == 4 and name not in order:
            order.append(name)

    return hook


def _layer_module(model, x, layer: str | None):
    """The Grad-CAM layer's module and name: the one named, else the last conv layer (None without one)."""
    names = conv_layers(model, x) if x.dim() == 4 else []
    if layer is None:
        return (model.get_submodule(names[-1]), names[-1]) if names else (None, None)
    try:
        module = model.get_submodule(layer)
    except AttributeError:
        known = ", ".join(names) or "none"
        raise ConfigError(
            f"the network has no layer named '{layer}'", hint=f"conv layers: {known}", where="layer"
        ) from None
    return module, layer


# ---- randomization and the sanity score ----


def _reinitialize(root) -> None:
    """Re-initialize every module under ``root`` in place (the caller seeds torch's generator)."""
    import torch

    for module in root.modules():
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
            continue
        with torch.no_grad():
            for parameter in module.parameters(recurse=False):
                scale = float(parameter.std()) if parameter.numel() > 1 else 0.05
                parameter.normal_(0.0, scale or 0.05)


def randomized_copy(model, *, seed: int = 0):
    """A copy of ``model`` with every layer re-initialized (``reset_parameters``, seeded); parameters of
    modules without one are redrawn from a normal of their own standard deviation. BatchNorm running
    statistics are reset as well."""
    import torch

    clone = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        _reinitialize(clone)
    return clone.eval()


def learnable_layers(model) -> list[str]:
    """The top-level layers holding parameters, in the order they were added (the forward order of a
    built network): what the cascade re-initializes, from the last one down."""
    return [name for name, child in model.named_children() if any(True for _ in child.parameters())]


def cascade_check(method: Callable, model, x, target: int, layer_name: str | None, trained_map, *, seed=0):
    """Adebayo et al.'s cascading randomization: the layers re-initialized one more at a time from the
    top (output) layer down; after each, the rank correlation of the map with the trained one.

    Returns ``[{"layer": the layer just randomized, "sanity": rho}, ...]``, top first; the last step
    has every layer randomized.
    """
    import torch

    clone = copy.deepcopy(model).eval()
    steps = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for name in reversed(learnable_layers(model)):
            _reinitialize(clone.get_submodule(name))
            layer = clone.get_submodule(layer_name) if layer_name else None
            rho = rank_correlation(trained_map, method(clone, x, target, layer))
            steps.append({"layer": name, "sanity": round(rho, 4)})
    return steps


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho between the absolute values of two maps; two constant maps count as identical
    (1.0), one constant map against a varying one as unrelated (0.0)."""
    from scipy.stats import spearmanr

    first, second = np.abs(np.asarray(a, dtype=np.float64)).ravel(), np.abs(np.asarray(b)).ravel()
    if first.shape != second.shape:
        raise DataError(f"maps of {first.size} and {second.size} values cannot be compared")
    flat_a, flat_b = np.ptp(first) == 0, np.ptp(second) == 0
    if flat_a or flat_b:
        return 1.0 if flat_a and flat_b else 0.0
    rho = float(spearmanr(first, second).statistic)
    return 0.0 if math.isnan(rho) else rho


def sanity_check(
    method: Callable,
    model,
    x,
    target: int,
    layer_name: str | None,
    *,
    seed: int = 0,
    cascade: bool = False,
    random_model=None,
) -> dict:
    """The map of ``method`` for ``model`` and for its randomized copy, and how alike they rank.

    ``random_model``: that copy when the caller made it already (shared by the methods), else made here.

    Returns ``{"map", "sanity", "flagged", "seconds"}`` (and ``"cascade"``, the steps of
    ``cascade_check``, whose last one is then the sanity score); ``Skipped`` passes through.
    """
    start = time.perf_counter()
    layer = model.get_submodule(layer_name) if layer_name else None
    trained_map = method(model, x, target, layer)
    result = {"map": np.asarray(trained_map, dtype=np.float32)}
    if cascade:
        result["cascade"] = cascade_check(method, model, x, target, layer_name, trained_map, seed=seed)
        rho = result["cascade"][-1]["sanity"] if result["cascade"] else 1.0
    else:
        random_model = random_model if random_model is not None else randomized_copy(model, seed=seed)
        random_layer = random_model.get_submodule(layer_name) if layer_name else None
        rho = rank_correlation(trained_map, method(random_model, x, target, random_layer))
    result["sanity"] = round(rho, 4)
    result["flagged"] = bool(rho >= SANITY_THRESHOLD or np.ptp(trained_map) == 0)
    result["seconds"] = round(time.perf_counter() - start, 3)
    return result


def attribute_all(
    trained,
    x,
    *,
    target=None,
    layer=None,
    methods=METHODS,
    seed=0,
    randomization=RANDOMIZATION,
    conv_layer=None,
    out_dir=None,
) -> dict:
    """Every asked method's map for one prediction, each with its sanity score and flag.

    Args:
        trained: a ``TrainedModel`` or a torch module (a private eval-mode copy is used).
        x: one preprocessed example, (C, H, W) or (F,), with or without a batch dimension of 1.
        target: the class explained; None: the predicted class.
        layer: the Grad-CAM layer (a sub-module name, dotted when nested); None: the last conv layer.
            ``conv_layer`` is the same argument under the name the inspect report passes.
        methods: names from ``METHODS`` (or added to ``REGISTRY``).
        seed: seeds the randomized weights of the sanity check.
        randomization: ``full`` (every layer at once: one extra map per method) or ``cascade`` (one
            layer more at a time from the top: a map per learnable layer, listed under ``cascade``).
        out_dir: when given, the heat maps are written there and the JSON form is returned
            (``attributions_index``): each method's ``map`` array becomes an ``image`` file name.

    Returns:
        ``{"target", "layer", "randomization", "threshold", "methods": {name: {"map", "sanity",
        "flagged", "seconds"} or {"skipped": reason}}}``.
    """
    import torch

    layer = layer if layer is not None else conv_layer
    if randomization not in RANDOMIZATIONS:
        raise ConfigError(
            f"unknown randomization '{randomization}'", hint=f"choose {' or '.join(RANDOMIZATIONS)}"
        )

    unknown = [name for name in methods if name not in REGISTRY]
    if unknown:
        raise ConfigError(
            f"unknown attribution method '{unknown[0]}'", hint=f"choose from {', '.join(REGISTRY)}"
        )
    model = _module_of(trained)
    xb = _batch_of_one(x, getattr(trained, "input_shape", None) or getattr(model, "input_shape", None))
    with torch.no_grad():
        logits = model(xb)
    classes = int(logits.shape[-1])
    if target is None:
        target = int(logits[0].argmax())
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < classes:
        raise ConfigError(f"target must be a class index from 0 to {classes - 1}", where="target")
    if xb.dim() not in (2, 4):  # frame sequences (T, C, H, W) and other inputs: no per-pixel map here
        shape = list(xb.shape[1:])
        reason = f"attributions take an image (C, H, W) or a vector (F,); this input is {shape}"
        return _result(target, None, randomization, {name: {"skipped": reason} for name in methods}, out_dir)
    _, layer_name = _layer_module(model, xb, layer)
    cascade = randomization == "cascade"
    random_model = None if cascade else randomized_copy(model, seed=seed)  # one for every method
    results: dict[str, dict] = {}
    for name in methods:
        try:
            results[name] = sanity_check(
                REGISTRY[name], model, xb, target, layer_name, seed=seed, cascade=cascade,
                random_model=random_model,
            )  # fmt: skip
        except Skipped as exc:
            results[name] = {"skipped": str(exc)}
    return _result(target, layer_name, randomization, results, out_dir, xb[0].detach())


def _result(target, layer_name, randomization, methods, out_dir, x=None) -> dict:
    result = {
        "target": target,
        "layer": layer_name,
        "randomization": randomization,
        "threshold": SANITY_THRESHOLD,
        "methods": methods,
    }
    return result if out_dir is None else attributions_index(result, x, out_dir)


# ---- images ----


def _input_rgb(x) -> np.ndarray:
    """One (C, H, W) example as an (H, W, 3) uint8 picture, contrast stretched (the first channel of
    other channel counts)."""
    array = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float32)
    if array.ndim == 4:
        array = array[0]
    array = array[:3] if array.shape[0] == 3 else array[:1]
    low, high = float(array.min()), float(array.max())
    scaled = (array - low) / ((high - low) or 1.0)
    picture = np.moveaxis(scaled, 0, -1)
    if picture.shape[-1] == 1:
        picture = np.repeat(picture, 3, axis=-1)
    return (picture * 255).clip(0, 255).astype(np.uint8)


def attribution_png(x, attribution_map, *, signed: bool = False) -> bytes:
    """The map as a heat map over the input (1- or 3-channel), PNG bytes; small images are enlarged.

    Unsigned maps use ``inferno`` from 0 to their maximum; signed maps ``RdBu_r`` centred on zero.
    """
    from matplotlib import colormaps
    from PIL import Image

    heat = np.asarray(attribution_map, dtype=np.float32)
    if heat.ndim != 2:
        raise DataError("a heat map needs an image example (C, H, W)")
    if signed:
        bound = float(np.abs(heat).max()) or 1.0
        colored = colormaps["RdBu_r"]((heat / bound + 1) / 2)[..., :3]
        weight = np.abs(heat) / bound
    else:
        top = float(heat.max()) or 1.0
        colored = colormaps["inferno"](np.clip(heat / top, 0, 1))[..., :3]
        weight = np.clip(heat / top, 0, 1)
    base = _input_rgb(x).astype(np.float32) / 255
    alpha = OVERLAY_ALPHA * (0.35 + 0.65 * weight)[..., None]
    blended = ((1 - alpha) * base + alpha * colored) * 255
    image = Image.fromarray(blended.clip(0, 255).astype(np.uint8))
    scale = max(1, math.ceil(OVERLAY_MIN_SIDE / min(image.size)))
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def attributions_index(result: dict, x, out_dir: str | Path, *, prefix: str = "attr") -> dict:
    """``result`` of ``attribute_all`` in its JSON form: each map of an image example written as
    ``<out_dir>/<prefix>_<method>.png`` and named by ``image`` (relative to ``out_dir``); a vector
    example's map is kept as its first 64 ``values``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    methods: dict[str, dict] = {}
    for method, item in result["methods"].items():
        if "skipped" in item:
            methods[method] = {"skipped": item["skipped"]}
            continue
        entry = {key: item[key] for key in ("sanity", "flagged", "seconds", "cascade") if key in item}
        entry["signed"] = method in SIGNED
        if np.asarray(item["map"]).ndim == 2:
            name = f"{prefix}_{method}.png"
            (out / name).write_bytes(attribution_png(x, item["map"], signed=method in SIGNED))
            entry["image"] = name
        else:
            entry["values"] = [round(float(v), 5) for v in np.asarray(item["map"]).ravel()[:64]]
        methods[method] = entry
    return {**{key: value for key, value in result.items() if key != "methods"}, "methods": methods}


def attributions_write(result: dict, x, out_dir: str | Path) -> list[dict]:
    """``attributions_index`` as a list, one entry per method: ``{"method", "image", "sanity",
    "flagged", "signed", "seconds"}`` or ``{"method", "skipped"}`` (the inspect report's form)."""
    methods = attributions_index(result, x, out_dir)["methods"]
    return [{"method": method, **item} for method, item in methods.items()]
