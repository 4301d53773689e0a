"""A run's files in Django's default storage: published from the working directory, read back anywhere.

Storage names are relative to the storage root: ``runs/<run id>/<path inside the run directory>``
(``runs/7/checkpoints/best.ckpt``, ``runs/7/summary.json``, ``runs/7/export/model.onnx``). The
default storage is a FileSystemStorage rooted at ``LAYERLAB_HOME``, whose ``runs/<id>`` is the
workers' working directory itself, so publishing there copies nothing. With another storage (a
shared or object store) the working directory is only a scratch copy: readers on any machine take
the local working copy when it is there, else a copy fetched into ``LAYERLAB_CACHE_DIR/runs/<id>/``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, default_storage

from layerlab.apps.runs.models import Checkpoint, Run
from layerlab.core.errors import CheckpointError
from layerlab.core.runlayout import (
    BEST,
    CHECKPOINT_DIR,
    CHECKPOINT_SUFFIX,
    END_FILES,
    LAST,
    has_checkpoints,
)

log = logging.getLogger("layerlab.runs")


def run_working_dir(run: Run) -> Path:
    """The run's local working directory: ``LAYERLAB_RUNS_DIR/<id>`` on this machine for runs of
    workers (each machine has its own), the recorded directory for ``layerlab train`` runs."""
    if run.origin == Run.Origin.CLI and run.run_dir:
        return Path(run.run_dir)
    return Path(settings.LAYERLAB_RUNS_DIR) / str(run.id)


def run_file_name(*, run: Run, relative: str | Path) -> str:
    """The storage name of a file of the run: ``runs/<id>/<relative>`` (POSIX, relative to the storage root).

    Args:
        relative: a path inside the run directory, e.g. ``checkpoints/best.ckpt``.
    """
    parts = PurePosixPath(Path(relative).as_posix()).parts
    if not parts or PurePosixPath(*parts).is_absolute() or ".." in parts:
        raise CheckpointError(f"'{relative}' is not a path inside run {run.id}'s directory")
    return f"runs/{run.id}/{PurePosixPath(*parts)}"


def run_file_relative(*, run: Run, path: str | Path) -> str:
    """``path`` (absolute, in the working directory, or already relative) as a path inside the run directory."""
    path = Path(path)
    if not path.is_absolute():
        return path.as_posix()
    for root in (run_working_dir(run), Path(run.run_dir or run_working_dir(run))):
        if path.is_relative_to(root):
            return path.relative_to(root).as_posix()
    # Recorded by a worker on another machine: ``<its LAYERLAB_HOME>/runs/<id>/<relative>``.
    parts = path.parts
    for index in range(len(parts) - 2, 0, -1):
        if parts[index - 1 : index + 1] == ("runs", str(run.id)):
            return PurePosixPath(*parts[index + 1 :]).as_posix()
    raise CheckpointError(f"'{path}' is not inside run {run.id}'s directory {run_working_dir(run)}")


def storage_holds(name: str, local: Path) -> bool:
    """True when the default storage is a file system whose ``name`` is the very file ``local``."""
    storage = default_storage
    if not isinstance(storage, FileSystemStorage):
        return False
    try:
        return Path(storage.path(name)).resolve() == local.resolve()
    except Exception:  # a name the storage refuses is not that file
        return False


def run_file_publish(*, run: Run, path: str | Path) -> str | None:
    """Save a file of the run's working directory into the default storage; returns its storage name.

    Nothing is copied when the storage already holds that very file (the default setup). A file
    that does not exist (the engine did not write it) is skipped: returns None.

    Args:
        path: the file, absolute (inside the working directory) or relative to it.
    """
    relative = run_file_relative(run=run, path=path)
    local = run_working_dir(run) / relative
    name = run_file_name(run=run, relative=relative)
    if not local.is_file():
        return None
    if storage_holds(name, local):
        return name
    # Storages never overwrite (they pick another name), and best/last checkpoints change: replace.
    if default_storage.exists(name):
        default_storage.delete(name)
    with open(local, "rb") as handle:
        saved = default_storage.save(name, File(handle, name=local.name))
    if saved != name:  # another process saved it in between; ours is as new, drop the duplicate
        log.warning("run %s: storage kept %s as %s", run.id, name, saved)
        default_storage.delete(saved)
    return name


def run_files_publish(*, run: Run, relatives) -> list[str]:
    """Publish each existing file of ``relatives`` (paths inside the run directory); returns their names."""
    names = [run_file_publish(run=run, path=relative) for relative in relatives]
    return [name for name in names if name]


def storage_stamp(name: str) -> tuple[int, float | None]:
    """(size, modification time or None) of a stored file, to tell a stale cached copy."""
    size = default_storage.size(name)
    try:
        modified = default_storage.get_modified_time(name).timestamp()
    except (NotImplementedError, AttributeError):
        modified = None
    return size, modified


def run_file_local(*, run: Run, relative: str | Path) -> Path:
    """A local path to read a file of the run: the working copy when present, else fetched from storage.

    The fetched copy lives under ``LAYERLAB_CACHE_DIR/runs/<id>/<relative>``; it is written to a
    temporary file and renamed, so concurrent readers never see half a file, and fetched again
    when the stored file changed (size or modification time).

    Args:
        relative: a path inside the run directory, e.g. ``checkpoints/best.ckpt``.
    """
    relative = run_file_relative(run=run, path=relative)
    local = run_working_dir(run) / relative
    if local.is_file():
        return local
    name = run_file_name(run=run, relative=relative)
    if not default_storage.exists(name):
        raise CheckpointError(
            f"run {run.id} has no file '{relative}' here or in the storage",
            hint="the run may not have written it yet; check LAYERLAB_STORAGE on this machine",
        )
    return fetch(name, Path(settings.LAYERLAB_CACHE_DIR) / "runs" / str(run.id) / relative)


def fetch(name: str, target: Path) -> Path:
    """Copy the stored ``name`` to ``target`` atomically (skipped when an up-to-date copy is there)."""
    size, modified = storage_stamp(name)
    if target.is_file():
        stat = target.stat()
        if stat.st_size == size and (modified is None or abs(stat.st_mtime - modified) < 1e-3):
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            shutil.copyfileobj(src, out, 1024 * 1024)
        if modified is not None:
            os.utime(tmp, (modified, modified))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def run_file_open(*, run: Run, relative: str | Path):
    """An open binary file of the run (for downloads): the working copy when present, else the stored one."""
    relative = run_file_relative(run=run, path=relative)
    local = run_working_dir(run) / relative
    if local.is_file():
        return open(local, "rb")  # noqa: SIM115 (the response closes it)
    name = run_file_name(run=run, relative=relative)
    if not default_storage.exists(name):
        raise CheckpointError(f"run {run.id} has no file '{relative}' here or in the storage")
    return default_storage.open(name, "rb")


def checkpoint_open(checkpoint: Checkpoint):
    """An open binary file of a recorded checkpoint (local working copy, else storage)."""
    return run_file_open(run=checkpoint.run, relative=checkpoint.path)


def run_checkpoint_local(*, run: Run) -> Path:
    """A local path of the run's best checkpoint, else its last one (fetched from storage when needed)."""
    for name in (BEST, LAST):
        try:
            return run_file_local(run=run, relative=f"{CHECKPOINT_DIR}/{name}")
        except CheckpointError:
            continue
    raise CheckpointError(
        f"run {run.id} has no checkpoint here or in the storage",
        hint="predict and export need a run that wrote a checkpoint",
    )


def run_dir_restore(*, run: Run) -> bool:
    """Fetch what resuming needs into the working directory when it holds no checkpoint (another machine).

    The latest checkpoint (``last.ckpt``, else the newest recorded), ``best.ckpt`` and the run's
    files are copied from storage. Returns True when the working directory can be resumed.
    """
    working = run_working_dir(run)
    if has_checkpoints(working):
        return True
    recorded = [run_file_relative(run=run, path=c.path) for c in run.checkpoints.order_by("-epoch", "-id")]
    numbered = [r for r in recorded if PurePosixPath(r).name not in (BEST, LAST)]
    wanted = [f"{CHECKPOINT_DIR}/{LAST}", *numbered[:1], f"{CHECKPOINT_DIR}/{BEST}", *END_FILES]
    restored = False
    for relative in dict.fromkeys(wanted):
        name = run_file_name(run=run, relative=relative)
        if storage_holds(name, working / relative) or not default_storage.exists(name):
            continue
        fetch(name, working / relative)
        restored = restored or relative.endswith(CHECKPOINT_SUFFIX)
    return restored


def checkpoint_response(run: Run, checkpoint: Checkpoint):
    """A download of a recorded checkpoint (web page and API): ``run<id>-epoch<N>.ckpt``; 404 when gone.

    Args:
        run: the run, already checked visible to the caller.
        checkpoint: one of ``run.checkpoints``.
    """
    from django.http import FileResponse, Http404

    try:
        handle = run_file_open(run=run, relative=checkpoint.path)
    except CheckpointError:
        raise Http404("the checkpoint file is gone (pruned, or not in this lab's storage)") from None
    name = f"run{run.id}-epoch{checkpoint.epoch}{Path(checkpoint.path).suffix}"
    return FileResponse(handle, as_attachment=True, filename=name)


def run_checkpoints_prune(*, run: Run) -> list[str]:
    """Delete stored numbered checkpoints beyond the newest ``train.keep_checkpoints`` (as the engine
    prunes its working directory), so another storage keeps what the default one keeps; returns the names.
    """
    keep = int((run.config.get("train") or {}).get("keep_checkpoints") or 0)
    if keep <= 0:
        return []
    recorded = sorted(
        (c.epoch, run_file_relative(run=run, path=c.path))
        for c in Checkpoint.objects.filter(run_id=run.id)
        if PurePosixPath(Path(c.path).as_posix()).name not in (BEST, LAST)
    )
    deleted = []
    for _, relative in recorded[:-keep]:
        name = run_file_name(run=run, relative=relative)
        if not storage_holds(name, run_working_dir(run) / relative) and default_storage.exists(name):
            default_storage.delete(name)
            deleted.append(name)
    return deleted
