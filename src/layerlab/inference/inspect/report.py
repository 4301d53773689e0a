"""Everything the "What it learned" tab shows for one checkpoint and one input, computed once and cached.

``inspect_run`` writes the pictures and an ``index.json`` (format: docs/inspect.md) into
``<cache_dir>/<key>/``, where the key hashes the checkpoint file's content, the input's values and
the options. A second call with the same key reads the index back and runs nothing. The entry is
written into a temporary folder and renamed into place, so a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
import uuid
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerlab.core.errors import ConfigError, DataError, LayerlabError
from layerlab.inference.inspect import activations, filters, maximize, topk, trace
from layerlab.inference.inspect.activations import LayerEntry, check_channel, find_entry, layer_entries
from layerlab.inference.inspect.inputs import load_input

VERSION = 1  # of the index format and of what is computed: part of the cache key
PARTS = ("activations", "stats", "filters", "topk", "maximize", "attributions")
ALL_PARTS = (*PARTS, "trace")
STATS_LIMIT = 512  # dataset examples used for channel statistics and the top 9
MAX_ENTRIES = 64  # entries kept per cache folder (about 1 MB each for signnet); the least recently used go
STALE_SECONDS = 3600  # a temporary folder older than this is a crashed build's
INDEX = "index.json"
INPUT_IMAGE = "input.png"

__all__ = ["ALL_PARTS", "PARTS", "cached_index", "inspect_run", "load_input"]


def inspect_run(
    trained,
    inputs,
    *,
    layer: str | None = None,
    channel: int | None = None,
    parts=PARTS,
    cache_dir: str | Path,
    out_dir: str | Path | None = None,
    data=None,
    input_name: str = "input",
    regularizers: maximize.Regularizers | None = None,
    seed: int = 0,
    data_cache_dir: str | Path | None = None,
    threads: int | None = None,
    compute: bool = True,
) -> dict | None:
    """Inspect ``trained`` on one input; returns the index (also ``<cache_dir>/<key>/index.json``).

    Args:
        trained: a ``TrainedModel`` (``inference.trained.load_trained``).
        inputs: one preprocessed example of the model's input shape (optionally with a batch axis of 1),
            or frames (T, *input shape): the first frame is then the example, and the trace is drawn.
        layer: the layer of the top 9, the maximization and the trace (default: the last convolution).
        channel: its channel (default: the one most active on the input).
        parts: which of ``ALL_PARTS`` to compute.
        cache_dir: where entries are kept, one folder per key.
        out_dir: also copy the entry's files there.
        data: ``(x, y)`` preprocessed examples for the statistics and the top 9 (at most
            ``STATS_LIMIT`` used); None: the run's own test split (else validation split).
        input_name: how the index names the input.
        regularizers: activation maximization's settings.
        seed: activation maximization's and the attributions' seed.
        data_cache_dir: where the run's decoded data is cached (default ``$LAYERLAB_HOME/cache``).
        threads: torch's CPU threads while computing (restored after); None leaves them as they are.
            Single-image work is many small operations: on a shared CPU one thread is fastest.
        compute: False returns the cached index, or None when there is none, without running the model.
    """
    parts = check_parts(parts)
    example, frames = split_input(trained, inputs)
    if frames is not None and "trace" not in parts:
        parts = (*parts, "trace")
    entries = layer_entries(trained)
    chosen = find_entry(trained, layer, entries) if layer else default_entry(entries)
    if channel is not None:
        channel = check_channel(chosen, channel)
    reg = regularizers or maximize.Regularizers()
    reg.check()
    _whole(seed, "seed", 0, 2**32 - 1)
    if threads is not None:
        _whole(threads, "threads", 1, 1024)
    options = {
        "version": VERSION,
        "layer": chosen.name,
        "channel": channel,
        "parts": list(parts),
        "regularizers": reg.__dict__,
        "seed": int(seed),
        "data": data_identity(data),
    }
    key = cache_key(Path(trained.checkpoint), example if frames is None else frames, options)
    cache_dir = Path(cache_dir)
    index = cached_index(cache_dir, key)
    if index is None and not compute:
        return None
    if index is not None:
        _touch(cache_dir / key)
    if index is None:
        with _building(cache_dir, key) as folder, _threads(threads):
            source = data if data is not None else RunSplit(data_cache_dir)
            index = _compute(trained, example, frames, chosen, channel, parts, source, reg, seed, folder)
            index.update(key=key, input={**index["input"], "name": input_name}, options=options)
            (folder / INDEX).write_text(json.dumps(index, indent=1), encoding="utf-8")
        index = {**index, "dir": str(cache_dir / key), "cached": False}
        prune_cache(cache_dir, keep=MAX_ENTRIES)
    else:  # the same pixels under another name: the entry is shared, the name is this call's
        index["input"] = {**index["input"], "name": input_name}
    if out_dir is not None:
        copy_entry(cache_dir / key, Path(out_dir))
    return index


def _whole(value, name: str, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not low <= value <= high:
        raise ConfigError(
            f"{name} must be a whole number from {low} to {high}, got {value!r}", where=f"--{name}"
        )


def check_parts(parts) -> tuple[str, ...]:
    """The parts asked for, each one of ``ALL_PARTS`` (a ConfigError names an unknown one)."""
    parts = tuple(parts)
    unknown = [p for p in parts if p not in ALL_PARTS]
    if unknown or not parts:
        raise ConfigError(
            f"unknown inspect part '{unknown[0]}'" if unknown else "no inspect part asked for",
            hint=f"choose from: {', '.join(ALL_PARTS)}",
            where="parts",
        )
    return tuple(dict.fromkeys(parts))


def split_input(trained, inputs) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(example, frames)``: one example of the model's input shape, and the frames when a sequence is given."""
    x = torch.as_tensor(np.asarray(inputs) if not isinstance(inputs, torch.Tensor) else inputs).float().cpu()
    shape = tuple(trained.input_shape)
    if not torch.isfinite(x).all():
        raise DataError("the input holds NaN or infinite values", where="--input")
    if tuple(x.shape) == shape:
        return x, (x if len(shape) == 4 else None)
    if x.ndim == len(shape) + 1 and tuple(x.shape[1:]) == shape and len(x) >= 1:
        return x[0], (x if len(x) > 1 else None)
    raise DataError(
        f"an input of shape {list(x.shape)} does not fit this model, which takes {list(shape)}",
        hint="give an image the run can decode, or an array of the model's input shape (frames: T first)",
        where="--input",
    )


def default_entry(entries: list[LayerEntry]) -> LayerEntry:
    """The last convolution; without one the last spatial layer; else the layer before the output."""
    for wanted in (lambda e: e.conv and e.spatial, lambda e: e.spatial):
        found = [e for e in entries if wanted(e)]
        if found:
            return found[-1]
    return entries[-2] if len(entries) > 1 else entries[-1]


def data_identity(data) -> str:
    """What the statistics are taken over, for the cache key: the run's split, or the given arrays' hash."""
    if data is None:
        return f"run-split:{STATS_LIMIT}"
    x = data[0] if isinstance(data, tuple | list) else data
    array = np.ascontiguousarray(torch.as_tensor(x[:STATS_LIMIT]).float().numpy())
    return "given:" + hashlib.sha256(array.tobytes()).hexdigest()[:16]


_FILE_HASHES: dict[tuple[str, int, int], str] = {}


def file_hash(path: Path) -> str:
    """sha256 of a file's content (remembered per path, size and mtime within the process)."""
    stat = path.stat()
    memo = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if memo not in _FILE_HASHES:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _FILE_HASHES[memo] = digest.hexdigest()
    return _FILE_HASHES[memo]


def cache_key(checkpoint: Path, x: torch.Tensor, options: dict) -> str:
    """16 hex digits from the checkpoint's content, the input's values and shape, and the options."""
    digest = hashlib.sha256(file_hash(checkpoint).encode())
    digest.update(json.dumps(list(x.shape)).encode())
    digest.update(np.ascontiguousarray(x.numpy(), dtype=np.float32).tobytes())
    digest.update(json.dumps(options, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def cached_index(cache_dir: str | Path, key: str) -> dict | None:
    """The index of a finished entry, or None (absent, or unreadable: it is then recomputed)."""
    folder = Path(cache_dir) / key
    try:
        index = json.loads((folder / INDEX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return {**index, "dir": str(folder), "cached": True}


@contextmanager
def _building(cache_dir: Path, key: str):
    """A fresh temporary folder, renamed to ``<cache_dir>/<key>`` when the block ends without error."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = cache_dir / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:6]}"
    temporary.mkdir()
    try:
        yield temporary
        try:
            temporary.rename(cache_dir / key)
        except OSError:  # another process finished the same entry first: keep theirs
            shutil.rmtree(temporary, ignore_errors=True)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def _touch(folder: Path) -> None:
    """Mark an entry as just used (its folder's mtime orders the pruning)."""
    with suppress(OSError):
        os.utime(folder)


def prune_cache(cache_dir: str | Path, keep: int = MAX_ENTRIES) -> list[str]:
    """Remove all but the ``keep`` most recently used entries, and crashed builds' temporary folders;
    returns the keys removed."""
    cache_dir = Path(cache_dir)
    try:
        folders = [p for p in cache_dir.iterdir() if p.is_dir()]
    except OSError:
        return []
    now = time.time()
    for stale in (p for p in folders if p.name.startswith(".")):
        if now - stale.stat().st_mtime > STALE_SECONDS:
            shutil.rmtree(stale, ignore_errors=True)
    entries = sorted((p for p in folders if not p.name.startswith(".")), key=lambda p: p.stat().st_mtime)
    removed = entries[: max(0, len(entries) - keep)]
    for folder in removed:
        shutil.rmtree(folder, ignore_errors=True)
    return [folder.name for folder in removed]


@contextmanager
def _threads(threads: int | None):
    """torch's intra-op threads set to ``threads`` for the block (None: unchanged)."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def copy_entry(folder: Path, out_dir: Path) -> None:
    """Copy an entry's files (index and pictures) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_file():
            shutil.copyfile(path, out_dir / path.name)


@contextmanager
def _timed(seconds: dict, name: str):
    """Record the block's wall time under ``seconds[name]``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        seconds[name] = round(time.perf_counter() - start, 4)


def _compute(trained, example, frames, chosen, channel, parts, data, reg, seed, folder: Path) -> dict:
    """Every part asked for, written into ``folder``; returns the index."""
    from layerlab.inference.inspect import render

    seconds: dict[str, float] = {}
    entries = layer_entries(trained)
    with _timed(seconds, "forward"):
        outputs, logits = activations.capture(trained, example[None], entries)
    if channel is None:
        channel = most_active(outputs[chosen.name][0], chosen)
    index: dict = {
        "version": VERSION,
        "checkpoint": str(trained.checkpoint),
        "epoch": trained.epoch,
        "input": {"shape": list(example.shape), "image": None, "prediction": prediction(trained, logits)},
        "layer": chosen.name,
        "channel": channel,
        "parts": list(parts),
        "seconds": seconds,
        "layers": [_layer_item(e) for e in entries],
        "stats": None,
        "filters": None,
        "topk": None,
        "maximize": None,
        "attributions": None,
        "trace": None,
    }
    if len(trained.input_shape) in (3, 4):  # an image, or a clip's first frame
        first = example.numpy() if len(trained.input_shape) == 3 else example[0].numpy()
        picture = render.to_rgb(render.denormalize(first, trained.preprocessing))
        index["input"]["image"] = render.save_png(render.upscale(picture, side=128), folder / INPUT_IMAGE)
    items = {item["name"]: item for item in index["layers"]}
    if "activations" in parts:
        with _timed(seconds, "activations"):
            for entry in entries:
                output = outputs[entry.name][0].float().cpu().numpy()
                items[entry.name]["values"] = activations.values_summary(output)
                items[entry.name]["image"] = activations.activation_image(
                    output, entry, folder / f"act_{entry.path}.png"
                )
    split = None
    if {"stats", "topk"} & set(parts):
        with _timed(seconds, "data"):
            split = _split_or_error(trained, data)
    collector = topk.PeakCollector(chosen, channel) if "topk" in parts else None  # shares the stats' pass
    if "stats" in parts:
        index["stats"] = _stats_part(trained, split, entries, items, seconds, collector)
    if "filters" in parts:
        with _timed(seconds, "filters"):
            index["filters"] = filters.filters_image(trained, folder / "filters.png", entries)
    if "topk" in parts:
        index["topk"] = _topk_part(trained, split, chosen, channel, folder, seconds, collector)
    if "maximize" in parts:
        with _timed(seconds, "maximize"):
            index["maximize"] = _maximize_part(trained, chosen, channel, logits, reg, seed, folder)
    if "attributions" in parts:
        with _timed(seconds, "attributions"):
            index["attributions"] = _attributions_part(
                trained, example, chosen, entries, logits, seed, folder
            )
    if "trace" in parts and frames is not None:
        with _timed(seconds, "trace"):
            index["trace"] = trace.trace_part(trained, frames, chosen, channel, folder)
    seconds["total"] = round(sum(v for k, v in seconds.items() if k != "total"), 4)
    return index


def _layer_item(entry: LayerEntry) -> dict:
    return {
        "name": entry.name,
        "kind": entry.kind,
        "path": entry.path,
        "shape": list(entry.shape),
        "spatial": entry.spatial,
        "conv": entry.conv,
        "channels": entry.channels,
        "image": None,
        "values": None,
        "stats": None,
    }


def most_active(output: torch.Tensor, entry: LayerEntry) -> int:
    """The channel with the largest mean activation in one example's output of ``entry``."""
    values = activations.per_channel(output[None].float(), entry)[0]
    return int(values.mean(dim=1).argmax())


def is_classifier(trained, logits: torch.Tensor) -> bool:
    """Whether the output is one logit per class (not a regression or a reconstruction)."""
    task = ((trained.config or {}).get("train") or {}).get("task", "classification")
    return task == "classification" and logits.ndim == 2 and logits.shape[1] == len(trained.classes)


def prediction(trained, logits: torch.Tensor) -> dict | None:
    """The top 3 classes of a classifier's logits (None for a network whose output is not one per class)."""
    if not is_classifier(trained, logits):
        return None
    probs = torch.softmax(logits.float(), dim=1)[0]
    values, indices = probs.topk(min(3, len(trained.classes)))
    return {
        "class_index": int(indices[0]),
        "top": [
            {"class": trained.classes[i], "probability": round(p, 6)}
            for p, i in zip(values.tolist(), indices.tolist(), strict=True)
        ],
    }


def _split_or_error(trained, data):
    """``(x, y, split name)`` limited to ``STATS_LIMIT``, or ``{"error": one line}`` when it cannot be loaded."""
    try:
        return run_split(trained, data.cache_dir) if isinstance(data, RunSplit) else _given(data)
    except LayerlabError as exc:
        return {"error": exc.one_line()}


def _given(data) -> tuple:
    """``(x, y, "given")`` from caller's examples: ``(x, y)`` or ``x`` alone."""
    x, y = (data[0], data[1]) if isinstance(data, tuple | list) else (data, None)
    x = torch.as_tensor(x[:STATS_LIMIT]).float()
    return x, (None if y is None else torch.as_tensor(y[:STATS_LIMIT])), "given"


@dataclass(frozen=True)
class RunSplit:
    """The run's own split, decoded through the data cache in ``cache_dir``."""

    cache_dir: str | Path | None = None


def run_split(trained, cache_dir: str | Path | None = None) -> tuple:
    """The run's own test split (else its validation split), the first ``STATS_LIMIT`` examples."""
    from layerlab.train import adapters
    from layerlab.train.config import experiment_from_mapping

    cfg = experiment_from_mapping(trained.config)
    prepared = adapters.prepare_data(
        cfg.data, seed=cfg.seed, cache_dir=Path(cache_dir) if cache_dir else None
    )
    for name, x, y in (("test", prepared.test_x, prepared.test_y), ("val", prepared.val_x, prepared.val_y)):
        if len(y):
            count = min(len(y), STATS_LIMIT)
            return torch.as_tensor(x[:count]).float(), y[:count], name
    raise DataError("the run's data has no test or validation examples", hint="pass examples with data=")


def _stats_part(trained, split, entries, items, seconds, collector) -> dict:
    if isinstance(split, dict):
        return split
    x, _y, name = split
    if tuple(x.shape[1:]) != tuple(trained.input_shape):
        return {
            "error": f"the examples have shape {list(x.shape[1:])}, the model takes {list(trained.input_shape)}"
        }
    with _timed(seconds, "stats"):
        stats = activations.channel_stats(trained, x, entries, on_batch=collector)
    for layer_name, values in stats.items():
        items[layer_name]["stats"] = values
    dead = {layer_name: v["dead"] for layer_name, v in stats.items() if v["dead"]}
    return {"split": name, "n": len(x), "dead_by_layer": dead}


def _topk_part(trained, split, chosen, channel, folder, seconds, collector) -> dict | None:
    if isinstance(split, dict):
        return split
    x, y, _name = split
    if len(trained.input_shape) != 3 or tuple(x.shape[1:]) != tuple(trained.input_shape):
        return None
    with _timed(seconds, "topk"):
        peaks = collector.peaks() if collector is not None and collector.seen == len(x) else None
        result = topk.top_examples(trained, x, y, chosen, channel, peaks=peaks)
        return topk.topk_images(trained, x, result, folder)


def _maximize_part(trained, chosen, channel, logits, reg, seed, folder) -> dict | None:
    """The input maximizing the chosen channel, and the one maximizing the predicted class."""
    if len(trained.input_shape) != 3:
        return None
    results = {}
    targets = [("channel", chosen, channel)]
    if is_classifier(trained, logits):
        targets.append(("class", None, int(logits[0].argmax())))
    found_all = maximize.maximize_many(
        trained, [(entry, unit) for _, entry, unit in targets], regularizers=reg, seed=seed
    )
    for (target, entry, unit), found in zip(targets, found_all, strict=True):
        results[target] = {
            "layer": entry.name if entry is not None else None,
            "channel": unit if entry is not None else None,
            "class": trained.classes[unit] if entry is None else None,
            "image": maximize.maximize_image(trained, found, folder / f"maximize_{target}.png"),
            "steps": reg.steps,
            "start": round(found.start, 6),
            "final": round(found.final, 6),
            "seed": int(seed),
        }
    return results


def _attributions_part(trained, example, chosen, entries, logits, seed, folder) -> dict:
    """H's attributions (``inference.inspect.attributions``), or ``{"error"}`` when it is absent or fails."""
    try:
        from layerlab.inference.inspect import attributions
    except ImportError:
        return {
            "error": "attributions are not available (layerlab.inference.inspect.attributions is missing)"
        }
    convs = [e for e in entries if e.conv and e.spatial]
    layer = chosen.path if chosen.conv and chosen.spatial else (convs[-1].path if convs else None)
    target = int(logits[0].argmax()) if is_classifier(trained, logits) else None
    x = example[None].to(activations.model_device(trained))
    try:
        result = attributions.attribute_all(trained, x, target=target, layer=layer, seed=seed)
        methods = attributions.attributions_write(result, x, folder)
    except LayerlabError:
        raise
    except Exception as exc:  # the rest of the tab still works without them
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return {"error": f"attributions failed: {first}"}
    return {
        "target": result.get("target"),
        "layer": result.get("layer"),
        "threshold": result.get("threshold"),
        "randomization": result.get("randomization"),
        "methods": methods,
    }
