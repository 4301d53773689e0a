"""Which server files a user may have read: uploads of the project, folders granted to it, anything for superusers.

Every place a ``data.path`` enters (dataset create, run create, fine-tune, the workers before they
open anything) asks here. Paths are compared by their real path (symlinks resolved), and a refusal
reads the same whether the path exists or not, so it tells nothing about the server's files.
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from django.conf import settings

from layerlab.core.errors import ConfigError, DataError

REFUSED = "the path is not inside a folder granted to project '{project}'"
REFUSED_HINT = "upload the data, name a dataset (data.dataset), or ask an administrator to grant its folder"


def real(path: str | Path) -> str:
    """The real absolute path (``~`` expanded, symlinks resolved, as the engine would open it)."""
    return os.path.realpath(os.path.expanduser(str(path)))


def inside(path: str, roots) -> bool:
    """Whether the real path ``path`` is one of ``roots`` or below one."""
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def upload_roots(project_id: int) -> list[str]:
    """Where the uploads of one project live: the local cache and the file-system storage."""
    roots = [
        Path(settings.LAYERLAB_CACHE_DIR) / "uploads" / str(project_id),
        Path(settings.LAYERLAB_HOME) / "files" / "datasets" / str(project_id),
    ]
    location = (settings.STORAGES["default"].get("OPTIONS") or {}).get("location")
    if location:
        roots.append(Path(location) / "datasets" / str(project_id))
    return [real(root) for root in roots]


def internal_roots() -> list[str]:
    """The lab's own folders (cache, uploads, storage): never shown to users."""
    roots = [settings.LAYERLAB_CACHE_DIR, settings.LAYERLAB_HOME]
    location = (settings.STORAGES["default"].get("OPTIONS") or {}).get("location")
    if location:
        roots.append(location)
    return [real(root) for root in roots]


def granted_roots(project_id: int) -> list[str]:
    """The real paths of the folders a superuser granted to the project."""
    from layerlab.apps.projects.models import ProjectDataRoot

    paths = ProjectDataRoot.objects.filter(project_id=project_id).values_list("path", flat=True)
    return [real(path) for path in paths]


def is_superuser(user) -> bool:
    return bool(user is not None and getattr(user, "is_superuser", False) and user.is_active)


def data_path_check(*, path: str, user, project) -> None:
    """Refuse a server path outside the folders granted to ``project`` (superusers may read anything)."""
    if is_superuser(user):
        return
    if not path or not inside(real(path), granted_roots(project.id)):
        raise DataError(REFUSED.format(project=project.name), hint=REFUSED_HINT, where="data.path")


def dataset_path_trusted(dataset) -> bool:
    """Whether a saved dataset's own path may be read: an upload of its project, a folder still granted to
    its project, or a path registered by a superuser (that is a grant of its own)."""
    path = (dataset.data or {}).get("path")
    if not path:
        return True
    if dataset.kind == "upload":
        return inside(real(path), upload_roots(dataset.project_id))
    if dataset.created_by_id is not None and is_superuser(dataset.created_by):
        return True
    return inside(real(path), granted_roots(dataset.project_id))


def dataset_check_readable(dataset) -> None:
    """Refuse to read a dataset whose path is no longer allowed (grant revoked, or a record edited by hand)."""
    if not dataset_path_trusted(dataset):
        raise DataError(
            f"dataset '{dataset.name}' reads a folder that is not granted to project '{dataset.project.name}'",
            hint="ask an administrator to grant its folder again, or upload the data",
        )


def config_data_check(*, data: dict, user, project, dataset=None) -> None:
    """Check the ``data`` section a run will read: the saved dataset's own path, or a granted one."""
    path = (data or {}).get("path")
    if not path:
        return
    if dataset is not None and path == (dataset.data or {}).get("path") and dataset_path_trusted(dataset):
        return
    data_path_check(path=path, user=user, project=project)


def spec_file_check(*, preset: str | None, user) -> None:
    """Refuse ``model.preset`` naming a spec file on the server for non-superusers (name a preset, or give layers)."""
    from layerlab.nn.resolve import SPEC_SUFFIXES

    if preset and str(preset).lower().endswith(SPEC_SUFFIXES) and not is_superuser(user):
        raise ConfigError(
            "model.preset names a file on the server, which only administrators may do",
            hint="name a preset (mlp, lenet5 ...), give model.layers, or save the network and pick it",
            where="model.preset",
        )


# A quoted or bare absolute path inside a message (after the known paths were replaced).
_QUOTED_PATH = re.compile(r"'(/[^']*)'")
_BARE_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\",;:()]+/)+[^\s'\",;:()]*")


def message_redact(text: str, *, paths=(), label: str = "the data") -> str:
    """``text`` without server paths: a known data path becomes ``label`` (what is below it stays, relative),
    the lab's own folders and any other absolute path become ``…``."""
    if not text:
        return text
    known = set()
    for path in paths:
        if path:
            known.update({str(path), real(path)})
    for path in sorted(known, key=len, reverse=True):
        text = text.replace(f"'{path}'", label).replace(path.rstrip(os.sep) + os.sep, "")
        text = text.replace(path, label)
    for root in sorted(set(internal_roots()), key=len, reverse=True):
        text = text.replace(root, "…")
    text = _QUOTED_PATH.sub(lambda m: f"'{PurePosixPath(m.group(1)).name or '…'}'", text)
    return _BARE_PATH.sub("…", text)


def data_section_public(data: dict | None, *, dataset=None) -> dict:
    """A ``data`` section as users see it: an upload's internal path replaced by its dataset's name."""
    data = dict(data or {})
    path = data.get("path")
    if not path:
        return data
    if dataset is not None and path == (dataset.data or {}).get("path") and dataset.kind == "upload":
        data.pop("path")
        data["dataset"] = dataset.name
    elif inside(real(path), internal_roots()):
        data.pop("path")
        data["dataset"] = dataset.name if dataset is not None else "(an uploaded dataset)"
    return data


def error_redacted(exc, *, paths=(), label: str = "the data"):
    """The same ``LayerlabError`` with server paths taken out of its message, hint and place (re-raise it)."""
    exc.message = message_redact(exc.message, paths=paths, label=label)
    exc.hint = message_redact(exc.hint, paths=paths, label=label) if exc.hint else exc.hint
    exc.where = message_redact(exc.where, paths=paths, label=label) if exc.where else exc.where
    exc.args = (exc.one_line(),)
    return exc
