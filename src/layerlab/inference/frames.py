"""Activation traces over the frames of a clip, their peaks, and the peak-counting baseline.

The seed's idea, made measurable: a shape that moves back and forth k times over T frames makes a
unit that responds to where the shape is rise and fall k times, so counting the peaks of one unit's
per-frame activation (its *trace*) counts the repetitions, with no recurrent net at all.

- ``activation_trace(model, clip, layer, channel)``: the per-frame value (T,) of one channel of a layer
  (the channel's mean over positions for maps, the unit's value for vectors). Works for a network on
  clips (T, C, H, W), whose layers inside a ``timedistributed`` body give one output per frame, and for a
  network on single images (C, H, W), through which the frames go as a batch.
- ``trace_peaks`` / ``count_peaks``: peaks standing out by a fraction of the trace's range (scipy's
  ``find_peaks``); ``turns=True`` counts maxima and minima and halves, which does not lose the cycle
  whose top falls on the clip's first or last frame.
- ``peak_count_baseline(model, clips, labels, layer, channel=None)``: counts each clip's repetitions
  from the trace; the channel (and the prominence and counting mode) is chosen on the train clips, the
  accuracy reported on the test clips. ``baseline_for_run`` runs it on a finished run's own splits.

``model`` may be a ``TrainedModel`` or a bare ``torch.nn.Module`` (an untrained network: the baseline
on random features).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import ConfigError, DataError

PROMINENCES = (0.1, 0.2, 0.4, 0.6)  # band widths, of the trace's range: the grid the baseline chooses from
DEFAULT_PROMINENCE = 0.3
BATCH = 32  # clips per forward pass


def network_of(model) -> torch.nn.Module:
    """The network of a TrainedModel, or ``model`` itself when it is a network already."""
    return model.model if hasattr(model, "model") and isinstance(model.model, torch.nn.Module) else model


def find_layer(model, layer: str) -> tuple[str, torch.nn.Module]:
    """The sub-module named ``layer``: a dotted path (``frames.conv1``) or a unique last part (``conv1``)."""
    modules = dict(network_of(model).named_modules())
    modules.pop("", None)
    if layer in modules:
        return layer, modules[layer]
    matches = [name for name in modules if name.split(".")[-1] == layer]
    if len(matches) == 1:
        return matches[0], modules[matches[0]]
    shown = ", ".join(name for name in modules if name.count(".") <= 1 and not name.split(".")[-1].isdigit())
    hint = f"use one of {', '.join(matches)}" if matches else f"layers: {shown[:300]}"
    raise ConfigError(f"the network has no single layer named '{layer}'", hint=hint, where="layer")


def _input_shape(model) -> tuple[int, ...]:
    shape = getattr(model, "input_shape", None) or getattr(network_of(model), "input_shape", None)
    if not shape:
        raise ConfigError("the model does not record its input shape", hint="build it with build_network")
    return tuple(int(d) for d in shape)


def frame_activations(model, clips, layer: str, *, positions: bool = False) -> torch.Tensor:
    """Per clip, per frame, per channel: the layer's output averaged over positions, ``(N, T, channels)``.

    Args:
        model: a TrainedModel or a network built by ``build_network``.
        clips: ``(N, T, C, H, W)`` preprocessed clips (what the model takes).
        layer: the layer's name (see ``find_layer``).
        positions: keep every position of a map instead of the mean: ``(N, T, channels * H * W)``,
            unit ``c * H * W + row * W + col``.
    """
    return layers_frame_activations(model, clips, [layer], positions=positions)[find_layer(model, layer)[0]]


def layers_frame_activations(
    model, clips, layers: Sequence[str], *, positions: bool = False
) -> dict[str, torch.Tensor]:
    """``frame_activations`` of several layers from one forward pass per batch, by each layer's path:
    tracing every layer of a network costs the passes of one."""
    module = network_of(model)
    clips = torch.as_tensor(np.asarray(clips) if not isinstance(clips, torch.Tensor) else clips).float()
    shape = _input_shape(model)
    video = tuple(clips.shape[1:]) == shape
    if not video and not (clips.ndim == 5 and tuple(clips.shape[2:]) == shape):
        raise DataError(
            f"clips of shape {list(clips.shape[1:])} do not fit this model, which takes {list(shape)}",
            hint="give (N, T, C, H, W) clips, preprocessed like the run's data",
        )
    targets = dict(find_layer(model, layer) for layer in layers)
    outputs: dict[str, torch.Tensor] = {}
    handles = [
        target.register_forward_hook(lambda _m, _i, out, name=name: outputs.__setitem__(name, out.detach()))
        for name, target in targets.items()
    ]
    device = (
        next(module.parameters()).device if any(True for _ in module.parameters()) else torch.device("cpu")
    )
    was_training = module.training
    module.eval()
    values: dict[str, list[torch.Tensor]] = {name: [] for name in targets}
    try:
        with torch.no_grad():
            for start in range(0, len(clips), BATCH):
                part = clips[start : start + BATCH].to(device)
                n, steps = part.shape[:2]
                outputs.clear()
                module(part if video else part.flatten(0, 1))
                for name in targets:
                    values[name].append(_per_frame(outputs[name].float(), n, steps, name, positions))
    finally:
        for handle in handles:
            handle.remove()
        module.train(was_training)
    return {name: torch.cat(parts).cpu() for name, parts in values.items()}


def _per_frame(out: torch.Tensor, n: int, steps: int, name: str, positions: bool) -> torch.Tensor:
    """A hooked output -> ``(n, steps, channels)``: frames are the batch (n*steps, ...) or axis 1."""
    if out.shape[0] == n * steps:  # inside the per-frame body, or frames sent as a batch
        frames = out.reshape(n, steps, *out.shape[1:])
    elif out.shape[0] == n and out.ndim >= 2 and out.shape[1] == steps:
        frames = out  # a layer after the per-frame body: (n, T, ...)
    else:
        raise DataError(
            f"layer {name} gives no output per frame (shape {list(out.shape[1:])})",
            hint="choose a layer inside the timedistributed body (e.g. frames.conv1), or its output",
        )
    if frames.ndim == 2:  # one value per frame
        return frames[:, :, None]
    if positions:
        return frames.reshape(n, steps, -1)
    return frames.reshape(n, steps, frames.shape[2], -1).mean(dim=3)


def activation_trace(
    model, clip, layer: str, channel: int, position: Sequence[int] | None = None
) -> np.ndarray:
    """The per-frame activation ``(T,)`` of ``channel`` of ``layer`` over one preprocessed ``clip`` (T, C, H, W).

    Args:
        position: ``(row, col)`` of the channel's map to read; default: the mean over the map.
    """
    clip = torch.as_tensor(np.asarray(clip) if not isinstance(clip, torch.Tensor) else clip)
    if position is None:
        values = frame_activations(model, clip[None], layer)[0]
        _check_channel(channel, values.shape[1], layer)
        return values[:, channel].numpy().astype(np.float64)
    maps = _frame_maps(model, clip[None], layer)[0]  # (T, C, H, W)
    _check_channel(channel, maps.shape[1], layer)
    row, col = (int(v) for v in position)
    if not (0 <= row < maps.shape[2] and 0 <= col < maps.shape[3]):
        raise ConfigError(
            f"position ({row}, {col}) is outside layer {layer}'s {maps.shape[2]}x{maps.shape[3]} map",
            where="position",
        )
    return maps[:, channel, row, col].numpy().astype(np.float64)


def _frame_maps(model, clips, layer: str) -> torch.Tensor:
    """``(N, T, C, H, W)`` outputs of a spatial layer (a ConfigError for a layer without maps)."""
    flat = frame_activations(model, clips, layer, positions=True)
    shape = layer_frame_shape(model, layer)
    if len(shape) != 3:
        raise ConfigError(
            f"layer {layer} has no maps (its output per frame is {list(shape)})", where="position"
        )
    return flat.reshape(*flat.shape[:2], *shape)


def layer_frame_shape(model, layer: str) -> tuple[int, ...]:
    """The output shape of ``layer`` for one frame, from a forward pass of one zero input."""
    shape = _input_shape(model)
    name, target = find_layer(model, layer)
    seen: list[tuple[int, ...]] = []
    handle = target.register_forward_hook(lambda _m, _i, out: seen.append(tuple(out.shape)))
    module = network_of(model)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            device = next(module.parameters()).device
            module(torch.zeros(1, *shape, device=device))
    finally:
        handle.remove()
        module.train(was_training)
    out = seen[-1]
    steps = shape[0] if len(shape) == 4 else 1
    return out[1:] if out[0] == steps else out[2:]


def _check_channel(channel: int, channels: int, layer: str) -> None:
    if not 0 <= channel < channels:
        raise ConfigError(
            f"channel {channel} is out of range: layer {layer} has {channels} channel(s)",
            hint=f"use a channel in 0..{channels - 1}",
            where="channel",
        )


def _levels(prominence: float) -> tuple[float, float]:
    if not (np.isfinite(prominence) and 0.0 < prominence < 1.0):
        raise ConfigError(f"prominence must be in (0, 1), got {prominence}", where="prominence")
    return 0.5 - prominence / 2, 0.5 + prominence / 2


def count_crossings(values, prominence: float = DEFAULT_PROMINENCE, *, turns: bool = False) -> np.ndarray:
    """Repetitions shown by many traces at once: ``values`` ``(N, T, K)`` -> counts ``(N, K)``.

    Each trace is scaled to [0, 1] by its own minimum and range; a *peak* is a rise from below
    ``0.5 - prominence/2`` to above ``0.5 + prominence/2`` (a Schmitt trigger: noise smaller than the
    band never counts twice). With ``turns`` the falls count too and the count is (rises + falls + 1) // 2,
    which keeps a cycle whose top falls on the first or last frame (k cycles show 2k or 2k - 1 turns).
    A flat trace counts 0.
    """
    low, high = _levels(prominence)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 3:
        raise DataError(f"traces must be (N, T, K), got shape {list(values.shape)}")
    floor = values.min(axis=1, keepdims=True)
    spread = values.max(axis=1, keepdims=True) - floor
    flat = spread[:, 0, :] <= 1e-12
    norm = (values - floor) / np.where(spread > 1e-12, spread, 1.0)
    state = np.zeros(norm.shape[::2], dtype=np.int8)  # 0 not yet known, 1 low, 2 high
    rises = np.zeros(norm.shape[::2], dtype=np.int64)
    falls = np.zeros_like(rises)
    for t in range(norm.shape[1]):
        is_low, is_high = norm[:, t] <= low, norm[:, t] >= high
        rises += (state == 1) & is_high
        falls += (state == 2) & is_low
        state = np.where(is_high, 2, np.where(is_low, 1, state)).astype(np.int8)
    counts = (rises + falls + 1) // 2 if turns else rises
    return np.where(flat, 0, counts)


def trace_peaks(trace, prominence: float = DEFAULT_PROMINENCE) -> np.ndarray:
    """Frame indices of the peaks ``count_peaks`` counts: the top of each rise through the band."""
    low, high = _levels(prominence)
    trace = np.asarray(trace, dtype=np.float64).reshape(-1)
    spread = float(trace.max() - trace.min()) if trace.size else 0.0
    if not spread > 1e-12:
        return np.zeros(0, dtype=np.int64)
    norm = (trace - trace.min()) / spread
    peaks: list[int] = []
    state, top = 0, None  # top: the frame of the highest value of the current counted episode
    for t, value in enumerate(norm):
        if value >= high:
            rising = state == 1
            if rising or (state == 2 and top is not None and value > norm[top]):
                top = t
            state = 2
        elif value <= low:
            if state == 2 and top is not None:
                peaks.append(top)
            state, top = 1, None
    if top is not None:
        peaks.append(top)
    return np.asarray(peaks, dtype=np.int64)


def count_peaks(trace, prominence: float = DEFAULT_PROMINENCE, *, turns: bool = False) -> int:
    """The repetitions one trace ``(T,)`` shows (see ``count_crossings``); without ``turns``, ``len(trace_peaks)``."""
    trace = np.asarray(trace, dtype=np.float64).reshape(1, -1, 1)
    return int(count_crossings(trace, prominence, turns=turns)[0, 0])


@dataclass
class BaselineResult:
    """The peak-counting baseline: what was chosen on train, the accuracies, and the class counts."""

    layer: str
    channel: int
    position: tuple[int, int] | None  # (row, col) of the map; None: the channel's mean over the map
    prominence: float
    turns: bool
    train_accuracy: float
    test_accuracy: float
    train_examples: int
    test_examples: int
    chance: float

    def to_dict(self) -> dict:
        return asdict(self)


def class_counts(classes: Sequence[str]) -> np.ndarray:
    """The repetition count each class stands for ("1".."K" -> 1..K); a ConfigError for other names."""
    try:
        return np.array([int(name) for name in classes], dtype=np.int64)
    except ValueError:
        raise ConfigError(
            f"class names {list(classes)[:5]} are not repetition counts",
            hint="the peak-counting baseline needs classes named by their count (1, 2, ...)",
        ) from None


def _accuracy_grid(values: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Accuracy ``(units, prominences, 2)`` of counting with every unit, band and mode (vectorized)."""
    grid = np.zeros((values.shape[2], len(PROMINENCES), 2))
    for p, prominence in enumerate(PROMINENCES):
        for turns in (0, 1):
            counted = count_crossings(values, prominence, turns=bool(turns))  # (N, units)
            grid[:, p, turns] = (counted == truth[:, None]).mean(axis=0)
    return grid


def _check_splits(clips: Mapping, labels: Mapping) -> None:
    for split in ("train", "test"):
        if split not in clips or split not in labels:
            raise DataError(
                f"give {split} clips and {split} labels", hint="clips={'train': ..., 'test': ...}"
            )
        if len(clips[split]) != len(labels[split]):
            raise DataError(f"{len(clips[split])} {split} clips but {len(labels[split])} {split} labels")
        if len(clips[split]) == 0:
            raise DataError(f"there are no {split} clips")


def peak_count_baseline(
    model,
    clips: Mapping[str, torch.Tensor | np.ndarray],
    labels: Mapping[str, torch.Tensor | np.ndarray],
    layer: str,
    channel: int | None = None,
    *,
    positions: bool = False,
    classes: Sequence[str] | None = None,
) -> BaselineResult:
    """Count repetitions by the peaks of one unit's trace; choose on train, report test accuracy.

    The unit is a channel (its mean over the map) of ``layer``, or with ``positions`` one position of
    one channel's map. Chosen on the train clips with the band (``PROMINENCES``) and the counting mode
    (peaks, or turns): the most accurate of them, the lowest index on a tie. Nothing is fitted on test.

    Args:
        model: a TrainedModel (its classes name the counts) or a network (then give ``classes``).
        clips: ``{"train": (N, T, C, H, W), "test": (M, T, C, H, W)}`` preprocessed clips.
        labels: ``{"train": (N,), "test": (M,)}`` class indices.
        layer: the layer whose channel is traced (``frames.conv2``, ``embed`` ...).
        channel: use this channel only; None chooses among all.
        positions: also choose the position in the channel's map.
        classes: class names ("1".."K") when ``model`` is not a TrainedModel.
    """
    truth, chance = _truth(model, classes, clips, labels)
    values = {
        s: frame_activations(model, clips[s], layer, positions=positions).numpy() for s in ("train", "test")
    }
    units = values["train"].shape[2]
    per_channel, width = 1, 1
    if positions:
        shape = layer_frame_shape(model, layer)
        if len(shape) == 3:
            per_channel, width = int(shape[1] * shape[2]), int(shape[2])
    if channel is not None:
        _check_channel(channel, units // per_channel, layer)
    allowed = (
        np.arange(units) if channel is None else np.arange(channel * per_channel, (channel + 1) * per_channel)
    )
    return _choose(values, truth, allowed, find_layer(model, layer)[0], per_channel, width, chance)


def layers_baselines(
    model, clips: Mapping, labels: Mapping, layers: Sequence[str], *, classes: Sequence[str] | None = None
) -> list[BaselineResult]:
    """``peak_count_baseline`` (channel means, every channel) of each of ``layers``, from one forward
    pass per batch of each split for all of them; the results in the order of ``layers``."""
    truth, chance = _truth(model, classes, clips, labels)
    traced = {s: layers_frame_activations(model, clips[s], layers) for s in ("train", "test")}
    return [
        _choose(
            {s: traced[s][name].numpy() for s in traced}, truth, np.arange(units.shape[2]), name, 1, 1, chance
        )
        for name, units in traced["train"].items()
    ]


def _truth(model, classes, clips: Mapping, labels: Mapping) -> tuple[dict[str, np.ndarray], float]:
    """The true count of every train and test clip, and chance (one over the number of counts)."""
    names = classes if classes is not None else getattr(model, "classes", None)
    if names is None:
        raise ConfigError("the class names are unknown", hint="pass classes=['1', '2', ...]")
    counts = class_counts(names)
    _check_splits(clips, labels)
    return {s: counts[np.asarray(labels[s], dtype=np.int64)] for s in ("train", "test")}, 1.0 / len(counts)


def _choose(values: Mapping, truth: Mapping, allowed: np.ndarray, layer: str, per_channel: int, width: int,
            chance: float) -> BaselineResult:  # fmt: skip
    """The unit among ``allowed``, the band and the mode most accurate on train (the first on a tie),
    scored on test. ``values``: ``{"train", "test"}`` traces ``(N, T, units)``; a unit is
    ``channel * per_channel + row * width + col`` (``per_channel`` 1: channel means)."""
    grid = _accuracy_grid(values["train"][:, :, allowed], truth["train"])
    best_u, best_p, best_t = np.unravel_index(int(np.argmax(grid)), grid.shape)  # first best: lowest index
    unit = int(allowed[best_u])
    prominence, turns = PROMINENCES[int(best_p)], bool(best_t)
    counted = count_crossings(values["test"][:, :, [unit]], prominence, turns=turns)[:, 0]
    position = (unit % per_channel // width, unit % per_channel % width) if per_channel > 1 else None
    return BaselineResult(
        layer=layer,
        channel=unit // per_channel,
        position=position,
        prominence=prominence,
        turns=turns,
        train_accuracy=float(grid[best_u, best_p, best_t]),
        test_accuracy=float(np.mean(counted == truth["test"])),
        train_examples=len(truth["train"]),
        test_examples=len(truth["test"]),
        chance=chance,
    )


def baseline_for_run(
    run: str | Path,
    layer: str,
    channel: int | None = None,
    *,
    positions: bool = False,
    untrained: bool = False,
    cache_dir=None,
) -> BaselineResult:
    """``peak_count_baseline`` on a finished run's own train and test splits (rebuilt from its config).

    Args:
        run: a run directory or checkpoint.
        layer, channel: as ``peak_count_baseline``.
        untrained: use the run's architecture freshly initialized (seeded by the run's seed) instead
            of its trained weights.
    """
    from layerlab.core.configtree import from_mapping
    from layerlab.data.config import DataConfig
    from layerlab.data.prepare import prepare_data
    from layerlab.inference.trained import load_trained
    from layerlab.train import adapters

    trained = load_trained(run)
    config = trained.config or {}
    data_cfg = from_mapping(DataConfig, config.get("data") or {}, "data")
    seed = int(config.get("seed", 0))
    data = prepare_data(data_cfg, seed=seed, cache_dir=cache_dir)
    model = trained
    if untrained:
        torch.manual_seed(seed)
        model = adapters.network_from_dict(trained.network)
    return peak_count_baseline(
        model,
        {"train": data.train_x, "test": data.test_x},
        {"train": data.train_y, "test": data.test_y},
        layer,
        channel,
        positions=positions,
        classes=trained.classes,
    )


def load_clips(preprocessing: dict, paths: Sequence[str | Path]) -> tuple[torch.Tensor, list[str]]:
    """Clips for a video run's prediction, readied like its training data, and a name per clip.

    Args:
        preprocessing: the run's stored preprocessing (kind ``video``).
        paths: clip folders (frame images in natural name order, decoded with the run's size and
            channels) or ``.npy`` / ``.npz`` files of clips ``(N, T, C, H, W)`` or one clip ``(T, C, H, W)``
            in raw units (uint8 pixels, or floats in [0, 1]); a file of several clips names them ``file:row``.
    """
    from layerlab.data.preprocess import Preprocessing

    pre = Preprocessing.from_dict(preprocessing)
    shape = tuple(pre.input_shape)
    arrays, names = [], []
    for path in (Path(p) for p in paths):
        clips = _clip_folder(path, pre) if path.is_dir() else _clip_file(path)
        if tuple(clips.shape) == shape:
            clips = clips[None]
        if tuple(clips.shape[1:]) != shape:
            raise DataError(
                f"'{path}' holds clips of shape {list(clips.shape[1:])} but this run takes {list(shape)} (T, C, H, W)",
                hint="give clips with the run's frame count, channels and size",
                where="--input",
            )
        arrays.append(clips)
        names += [str(path)] if len(clips) == 1 else [f"{path}:{i + 1}" for i in range(len(clips))]
    return pre.apply(np.concatenate(arrays)), names


def _clip_file(path: Path) -> np.ndarray:
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                return np.asarray(archive["X"] if "X" in archive.files else archive[archive.files[0]])
        if path.suffix == ".npy":
            return np.load(path, allow_pickle=False)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        raise DataError(
            f"cannot read clips from '{path}': {str(exc).splitlines()[0][:120]}", where="--input"
        ) from None
    raise DataError(
        f"'{path}' is not a clip",
        hint="give a folder of frame images, or .npy / .npz clip arrays",
        where="--input",
    )


def _clip_folder(path: Path, pre) -> np.ndarray:
    from layerlab.data.decode import decode_files_strict
    from layerlab.data.sources.base import natural_key

    frames = sorted(
        (p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")),
        key=lambda p: natural_key(p.name),
    )
    if not frames:
        raise DataError(f"clip folder '{path}' holds no frames", where="--input")
    return decode_files_strict(frames, pre.size, int(pre.channels or 1))[None]
