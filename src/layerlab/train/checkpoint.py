"""Checkpoints: one dict per file, written atomically, loaded with errors that name the file."""

from __future__ import annotations

import io
import os
import pickle
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from layerlab.core.errors import CheckpointError
from layerlab.core.runlayout import BEST, CHECKPOINT_DIR, LAST
from layerlab.core.runlayout import NUMBERED as _NUMBERED

# keys every checkpoint holds; a file without them is treated as corrupt
REQUIRED_KEYS = ("format", "epoch", "model", "network", "classes")
FORMAT = "layerlab-checkpoint-1"


def checkpoint_bytes(state: dict) -> bytes:
    """Serialize a checkpoint dict once, so the same bytes can be written to several files."""
    buffer = io.BytesIO()
    torch.save({"format": FORMAT, **state}, buffer)
    return buffer.getvalue()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so a reader sees the old file or the new one, never a torn one.

    Temp file in the same directory, flush, fsync, ``os.replace``, then fsync the directory so the
    rename itself survives a power cut.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def checkpoint_save(path: str | Path, state: dict) -> Path:
    """Save a checkpoint dict atomically.

    Args:
        path: the file to write (its directory is created).
        state: model/optimizer/scheduler state dicts, epoch, RNG states, callback states, config...
    """
    path = Path(path)
    write_atomic(path, checkpoint_bytes(state))
    return path


def _unreadable_reason(exc: Exception) -> str:
    """Why torch could not read a file, in words (torch's own first lines talk about its API)."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError) or "Weights only load failed" in text:
        return "not a torch checkpoint: garbled or written by another program"
    if (
        isinstance(exc, EOFError | OSError)  # a short file makes torch's reader fail with [Errno 22]
        or "zip archive" in text
        or "PytorchStreamReader" in text
        or "central directory" in text
    ):
        return "truncated or garbled: the file is not a whole checkpoint"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) <= 100 else first[:100].rsplit(" ", 1)[0] + " ..."


def checkpoint_load(path: str | Path, *, map_location: str | torch.device = "cpu") -> dict:
    """Load a checkpoint, raising CheckpointError that names the file when it is missing or corrupt.

    Args:
        path: a ``.ckpt`` file written by ``checkpoint_save``.
        map_location: where tensors are loaded (``cpu`` by default).
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"checkpoint '{path}' does not exist", hint="check the path or the run directory"
        )
    try:
        with warnings.catch_warnings():  # a garbled file makes torch warn before it fails
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises many kinds for a truncated or garbled file
        reason = _unreadable_reason(exc)
        raise CheckpointError(f"checkpoint '{path}' is corrupt ({reason})", hint=_instead(path)) from None
    if (
        not isinstance(state, dict)
        or state.get("format") != FORMAT
        or any(k not in state for k in REQUIRED_KEYS)
    ):
        raise CheckpointError(
            f"checkpoint '{path}' is corrupt (not a layerlab checkpoint)", hint=_instead(path)
        )
    return state


def _loads(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT


def _instead(path: Path) -> str:
    """The hint of a corrupt checkpoint: the newest other checkpoint of its folder that loads."""
    folder = path.parent
    others = [folder / LAST, *(p for _, p in reversed(numbered_checkpoints(folder.parent))), folder / BEST]
    for other in others:
        if other != path and other.is_file() and _loads(other):
            return (
                f"use {folder.name}/{other.name} instead (or --resume the run: it picks the newest whole one)"
            )
    return "no other checkpoint of this run loads: train it again"


def numbered_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """``(epoch, path)`` of every ``checkpoints/epoch-NNNN.ckpt`` in a run, oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for entry in folder.iterdir():
        match = _NUMBERED.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry))
    return sorted(found)


def resume_candidates(run_dir: str | Path) -> list[Path]:
    """Checkpoints to resume from, newest first: ``last.ckpt`` then numbered ones by epoch.

    ``best.ckpt`` is not listed: its epoch is only known once loaded (``find_latest_valid`` weighs it).
    """
    folder = Path(run_dir) / CHECKPOINT_DIR
    candidates = [folder / LAST] if (folder / LAST).is_file() else []
    candidates += [path for _, path in reversed(numbered_checkpoints(run_dir))]
    return candidates


def remove_partial_writes(run_dir: str | Path) -> list[str]:
    """Delete the temp files (``.NAME.xxxx.tmp``) a kill during ``write_atomic`` left behind; their names."""
    removed = []
    for folder in (Path(run_dir), Path(run_dir) / CHECKPOINT_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                if tmp.is_file():
                    tmp.unlink(missing_ok=True)
                    removed.append(tmp.name)
    return removed


def find_latest_valid(
    run_dir: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[Path | None, dict | None, list[str]]:
    """The newest checkpoint that loads (None, None when none does), plus a warning per corrupt one skipped.

    ``last.ckpt`` when it loads (it is always written last); else the newest numbered checkpoint that
    loads, or ``best.ckpt`` when it is of a later epoch (a kill while the numbered/last files of that
    epoch were written).
    """
    run_dir = Path(run_dir)
    skipped: list[str] = []

    def attempt(path: Path) -> dict | None:
        try:
            return checkpoint_load(path, map_location=map_location)
        except CheckpointError as exc:
            skipped.append(f"{exc.message}; using an earlier checkpoint")
            return None

    folder = run_dir / CHECKPOINT_DIR
    if (folder / LAST).is_file() and (state := attempt(folder / LAST)) is not None:
        return folder / LAST, state, skipped
    best = attempt(folder / BEST) if (folder / BEST).is_file() else None
    for epoch, path in reversed(numbered_checkpoints(run_dir)):
        if best is not None and int(best["epoch"]) > epoch:
            break
        if (state := attempt(path)) is not None:
            return path, state, skipped
    if best is not None:
        return folder / BEST, best, skipped
    return None, None, skipped


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest checkpoint file of a run (not checked for corruption), or None."""
    candidates = resume_candidates(run_dir)
    return candidates[0] if candidates else None


def load_latest_valid(
    run_dir: str | Path, *, map_location: str | torch.device = "cpu"
) -> tuple[Path, dict, list[str]]:
    """The newest checkpoint that loads, plus a warning for each corrupt newer one skipped.

    Args:
        run_dir: the run directory to resume.
        map_location: where tensors are loaded.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(
            f"run directory '{run_dir}' does not exist", hint="pass the directory of an earlier run"
        )
    path, state, skipped = find_latest_valid(run_dir, map_location=map_location)
    if path is not None:
        return path, state, skipped
    detail = "every checkpoint is corrupt" if skipped else "it holds no checkpoint"
    raise CheckpointError(
        f"cannot resume '{run_dir}': {detail}",
        hint="start a new run with `layerlab train CONFIG` (or check the directory)",
    )


def prune_numbered(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` numbered checkpoints (``keep`` 0 keeps every one)."""
    if keep <= 0:
        return
    for _, path in numbered_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)


def resolve_checkpoint(run_or_checkpoint: str | Path, *, prefer: str = BEST) -> Path:
    """A checkpoint file from a run directory (``best.ckpt``, else ``last.ckpt``) or a checkpoint path.

    Args:
        run_or_checkpoint: a run directory or a ``.ckpt`` file.
        prefer: which checkpoint of a run directory to take first.
    """
    path = Path(run_or_checkpoint)
    if path.is_file():
        return path
    if path.is_dir():
        for name in (prefer, BEST, LAST):
            candidate = path / CHECKPOINT_DIR / name
            if candidate.is_file():
                return candidate
        raise CheckpointError(
            f"'{path}' holds no checkpoint (looked for {CHECKPOINT_DIR}/{BEST} and {LAST})",
            hint="pass a run directory with checkpoints or a .ckpt file",
        )
    raise CheckpointError(f"no run directory or checkpoint at '{path}'", hint="check the path")


def to_plain(value: Any) -> Any:
    """Nested data reduced to types ``torch.load(weights_only=True)`` accepts (dict, list, str, numbers)."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    return value
