"""What a run learned, for the API and the dashboard: the inspection of one input, computed once, cached.

An input is a test example of the run (by its position in the test split) or an uploaded image.
``inference.inspect.report.inspect_run`` computes every part (activation grids, channel statistics,
first-layer filters, top-9, activation maximization, attributions) into ``<cache>/<key>/``, the key
being a hash of the checkpoint's content, the input and the options: the same checkpoint and input
are computed once. The cache is the run's own ``inspect/`` folder (``core.runlayout.INSPECT_DIR``,
where ``layerlab inspect`` writes too); each entry is then published to the lab's storage
(``runs.files``), so the images are served on any machine (a machine without the local copy fetches
them, and recomputes an index it has not seen: same key, same files). A run keeps its newest
``MAX_ENTRIES`` inspections: uploads would otherwise grow its folder without bound.

The work runs in the request (the run's cached model; one inspection at a time per process, a
request waiting at most ``WAIT_SECONDS`` for its turn, then told to retry): for
signnet it is well under the dashboard's 10 s budget (bench/bench_inspect.py). A network costlier
than ``MAX_MACS`` multiply-accumulates per example is answered only from the cache: what
``layerlab inspect`` wrote into the run's folder for the same input; else refused, with the CLI as
the way.
"""

from __future__ import annotations

import copy
import dataclasses
import re
import shutil
import threading
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage

from layerlab.apps.runs.files import (
    run_file_local,
    run_file_name,
    run_file_publish,
    run_working_dir,
    storage_holds,
)
from layerlab.apps.runs.gallery import thumbnail
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.predict import trained_model, upload_image_check
from layerlab.apps.runs.references import run_data_check, run_error_text
from layerlab.core.errors import CheckpointError, ConfigError, DataError, LayerlabError
from layerlab.core.runlayout import INSPECT_DIR

MAX_MACS = 150_000_000  # per example: 10x signnet at 64x64 (~15 M), still inside the budget on 2 cores
WAIT_SECONDS = 30  # a request waits at most this long for another one's inspection to finish
MAX_ENTRIES = 64  # inspections kept per run (the newest); each is a few hundred kB of PNGs
EXAMPLES_PAGE = 24  # thumbnails per page of the input picker
KEY = re.compile(r"^[0-9a-f]{8,64}$")
IMAGE = re.compile(r"^[A-Za-z0-9_.-]{1,100}\.png$")
_computing = threading.Lock()


class InspectError(LayerlabError):
    """The run cannot be inspected (no checkpoint, too large for the server, bad input)."""

    kind = "inspect_error"


def inspect_cache_dir(run: Run) -> Path:
    """``<run working dir>/inspect``: the cache of the run's inspections (the CLI's too)."""
    return run_working_dir(run) / INSPECT_DIR


def _too_large(run: Run, trained) -> InspectError | None:
    """The refusal for a network costlier than ``MAX_MACS`` per example (None when it fits)."""
    from layerlab.nn.shapes import summarize
    from layerlab.nn.spec import parse_network

    macs = summarize(parse_network(trained.network)).total_macs
    if macs <= MAX_MACS:
        return None
    return InspectError(
        f"run {run.id}'s network costs {macs:,} multiply-accumulates per example, above the "
        f"{MAX_MACS:,} the web server inspects in a request, and this input was not inspected before",
        hint="inspect it on the lab machine from the command line: layerlab inspect <run directory> --input FILE",
    )


def _engine_call(run: Run, trained, x, *, compute: bool, **options) -> dict | None:
    """``inspect_run`` with the engine's errors as the run's one-liners (no server paths)."""
    from layerlab.inference.inspect.report import inspect_run

    try:
        return inspect_run(
            trained, x, cache_dir=inspect_cache_dir(run), data_cache_dir=settings.LAYERLAB_CACHE_DIR,
            compute=compute, **options,
        )  # fmt: skip
    except ConfigError as exc:
        raise InspectError(exc.message, hint=exc.hint, where=exc.where or "layer") from None
    except LayerlabError as exc:
        raise InspectError(f"run {run.id}: {run_error_text(run, exc.message)}", hint=exc.hint) from None


def _inspect(run: Run, x, *, name: str, layer: str | None, channel: int | None) -> dict:
    """The cached (else computed and published) inspection of one preprocessed example.

    A cached entry is answered at once (no waiting for another request's inspection); a network
    above ``MAX_MACS`` is only ever answered from the cache (what ``layerlab inspect`` wrote).
    """
    run_data_check(run)  # the top-9 and channel statistics show the run's test data
    trained = trained_model(run)
    options = {"layer": layer, "channel": channel, "input_name": name}
    index = _engine_call(run, trained, x, compute=False, **options)
    if index is not None:
        return index_public(run, index)
    refusal = _too_large(run, trained)
    if refusal is not None:
        raise refusal
    if not _computing.acquire(timeout=WAIT_SECONDS):
        raise InspectError(
            "the server is inspecting other inputs right now", hint="try again in a few seconds"
        )
    try:
        # A private copy: the inspection hooks the model's layers, which the cached model shares with
        # predict requests in other threads.
        private = dataclasses.replace(trained, model=copy.deepcopy(trained.model))
        index = _engine_call(run, private, x, compute=True, **options)
    finally:
        _computing.release()
    if not index.get("cached"):
        _publish(run, Path(index["dir"]))
        inspect_cache_prune(run, keep=index["key"])
    return index_public(run, index)


def _publish(run: Run, folder: Path) -> None:
    for path in sorted(folder.iterdir()):
        if path.is_file():
            run_file_publish(run=run, path=path)


def inspect_cache_prune(run: Run, *, keep: str = "") -> list[str]:
    """Delete the oldest entries beyond ``MAX_ENTRIES`` (here and in the storage): uploads are many.

    Returns the keys deleted; ``keep`` (the entry just made) is never one of them.
    """
    cache = inspect_cache_dir(run)
    if not cache.is_dir():
        return []
    entries = [p for p in cache.iterdir() if p.is_dir() and KEY.match(p.name) and p.name != keep]
    entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
    deleted = []
    for folder in entries[max(0, MAX_ENTRIES - 1) :]:
        for path in folder.iterdir():
            name = run_file_name(run=run, relative=f"{INSPECT_DIR}/{folder.name}/{path.name}")
            if not storage_holds(name, path) and default_storage.exists(name):
                default_storage.delete(name)
        shutil.rmtree(folder, ignore_errors=True)
        deleted.append(folder.name)
    return deleted


def index_public(run: Run, index: dict) -> dict:
    """The index as the API shows it: no server folders; ``files`` maps each image name the index
    gives to its URL (``/api/runs/<id>/inspect/<key>/<name>/``, the router's trailing slash)."""
    public = {key: value for key, value in index.items() if key not in ("dir", "checkpoint")}
    checkpoint = Path(str(index.get("checkpoint") or ""))
    public["checkpoint"] = checkpoint.name or None
    public["run"] = run.id
    base = f"/api/runs/{run.id}/inspect/{index['key']}/"
    folder = Path(index["dir"])
    names = sorted(path.name for path in folder.glob("*.png")) if folder.is_dir() else []
    public["files"] = {name: f"{base}{name}/" for name in names if IMAGE.match(name)}
    return public


def run_inspect_example(
    *, run: Run, example: int, layer: str | None = None, channel: int | None = None
) -> dict:
    """The inspection of the test example at ``example`` (its position in the run's test split)."""
    from layerlab.data.preprocess import Preprocessing

    held = _test_examples(run, [example])
    if not len(held.positions):
        raise InspectError(
            f"run {run.id}'s test split has {held.test_size} examples, there is no example {example}",
            hint=f"choose an example from 0 to {held.test_size - 1}",
            where="example",
        )
    trained = trained_model(run)
    x = Preprocessing.from_dict(trained.preprocessing).apply(held.x[:1])
    label = held.classes[int(held.y[0])] if held.classes else str(int(held.y[0]))
    return _inspect(run, x[0], name=f"test example {example} ({label})", layer=layer, channel=channel)


def run_inspect_upload(*, run: Run, upload, layer: str | None = None, channel: int | None = None) -> dict:
    """The inspection of one uploaded image (decoded with the run's size and channels)."""
    from layerlab.apps.datasets.limits import decode_limits
    from layerlab.data.preprocess import Preprocessing
    from layerlab.inference.inputs import images_batch

    limit = settings.LAYERLAB_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise DataError(
            f"'{upload.name}' is {upload.size} bytes, the limit is {limit}",
            hint="send a smaller file, or raise LAYERLAB_UPLOAD_MAX_MB on the lab server",
            where="file",
        )
    upload_image_check(upload, decode_limits())
    trained = trained_model(run)
    name = Path(upload.name).name
    data = b"".join(upload.chunks())
    x = images_batch([(name, data)], Preprocessing.from_dict(trained.preprocessing), decode_limits())
    return _inspect(run, x[0], name=name, layer=layer, channel=channel)


def run_inspect_image(*, run: Run, key: str, name: str) -> Path:
    """A local path of one image of a cached inspection (fetched from storage when needed).

    Raises ``CheckpointError`` (answered 404) for a key or name that is not one of the run's files.
    """
    if not KEY.match(key) or not IMAGE.match(name):
        raise CheckpointError(f"run {run.id} has no inspection image '{key}/{name}'")
    return run_file_local(run=run, relative=f"{INSPECT_DIR}/{key}/{name}")


def _test_examples(run: Run, positions: list[int]):
    from layerlab.data.prepare import held_out_examples
    from layerlab.train.config import experiment_from_mapping

    if not run.is_finished or not (run.run_dir or run.origin == Run.Origin.SERVER):
        raise InspectError(f"run {run.id} has not finished", hint="inspect a run that wrote a checkpoint")
    run_data_check(run)
    cfg = experiment_from_mapping(run.config or {})
    try:
        return held_out_examples(
            cfg.data, seed=cfg.seed, positions=positions, cache_dir=settings.LAYERLAB_CACHE_DIR
        )
    except LayerlabError as exc:
        reason = run_error_text(run, exc.message)
        raise InspectError(f"run {run.id}: its test data cannot be read again ({reason})") from None


def run_inspect_examples(*, run: Run, offset: int = 0, limit: int = EXAMPLES_PAGE) -> dict:
    """A page of the run's test examples for the input picker: position, label, thumbnail."""
    limit = max(1, min(int(limit), EXAMPLES_PAGE))
    held = _test_examples(run, list(range(offset, offset + limit)))
    items = []
    for i, position in enumerate(held.positions):
        label = held.classes[int(held.y[i])] if held.classes else str(int(held.y[i]))
        item = {"position": int(position), "label": label}
        if held.kind == "image":
            item["image"] = thumbnail(held.x[i])
        items.append(item)
    return {"run": run.id, "total": int(held.test_size), "offset": offset, "items": items}
