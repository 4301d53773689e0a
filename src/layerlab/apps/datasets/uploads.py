"""Uploaded datasets: a zip of an image folder, an ``.npz`` or a ``.csv``, checked before anything is kept."""

from __future__ import annotations

import shutil
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction

from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.services import DatasetError, data_section_check, dataset_inspect_on_commit
from layerlab.apps.projects.models import Project
from layerlab.core.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
KINDS = {".zip": "imagefolder", ".npz": "npz", ".csv": "csv"}
# A zip may not unpack to more than this many times the upload limit (zip bombs).
MAX_EXPANSION = 10


def upload_kind(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in KINDS:
        raise DataError(
            f"'{filename}' is not a .zip, .npz or .csv file",
            hint="zip an image folder, or send arrays",
            where="file",
        )
    return KINDS[suffix]


def extract_image_zip(source: Path, target: Path, limit: int) -> Path:
    """Unpack a zip of ``class/image`` files safely; returns the folder holding the class folders."""
    if not zipfile.is_zipfile(source):
        raise DataError("the upload is not a readable zip archive", where="file")
    with zipfile.ZipFile(source) as archive:
        members = [m for m in archive.infolist() if not m.is_dir()]
        if sum(m.file_size for m in members) > limit * MAX_EXPANSION:
            raise DataError("the zip unpacks to too much data", hint="upload a smaller archive", where="file")
        images = []
        for member in members:
            name = PurePosixPath(member.filename)
            if name.is_absolute() or ".." in name.parts:
                raise DataError(f"unsafe path '{member.filename}' in the zip", where="file")
            if name.suffix.lower() in IMAGE_SUFFIXES and not any(
                p.startswith(("__MACOSX", ".")) for p in name.parts
            ):
                images.append((member, name))
        if not images:
            raise DataError(
                "the zip holds no images", hint="zip folders of images, one folder per class", where="file"
            )
        for member, name in images:
            destination = target.joinpath(*name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as src, open(destination, "wb") as dst:
                shutil.copyfileobj(src, dst)
            check_image(destination, member.filename)
    # A single top-level folder wrapping the class folders is the common way zips are made.
    root = target
    while True:
        children = [c for c in root.iterdir()]
        if len(children) == 1 and children[0].is_dir() and any(g.is_dir() for g in children[0].iterdir()):
            root = children[0]
            continue
        break
    if not any(child.is_dir() for child in root.iterdir()):
        raise DataError(
            "the images are not in class folders",
            hint="one sub-folder per class, e.g. cat/1.png",
            where="file",
        )
    return root


def check_image(path: Path, name: str) -> None:
    """Refuse a file named like an image that does not decode as one (header and structure only)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception:
        raise DataError(
            f"'{name}' in the zip is not an image that can be decoded",
            hint="remove it or replace it with a readable image",
            where="file",
        ) from None


def check_arrays(path: Path, kind: str) -> None:
    """Open an npz (without pickles) or a csv far enough to know it is one."""
    import numpy as np

    try:
        if kind == "npz":
            with np.load(path, allow_pickle=False) as arrays:
                if not arrays.files:
                    raise DataError("the .npz holds no arrays", where="file")
        else:
            with open(path, encoding="utf-8") as handle:
                header = handle.readline()
            if "," not in header:
                raise DataError("the .csv has no comma-separated columns", where="file")
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read the {kind} upload: {str(exc).splitlines()[0]}", where="file") from None


def dataset_upload(*, project: Project, user, name: str, upload, options: dict | None = None) -> Dataset:
    """Keep an uploaded file under the storage as a dataset; on any error nothing stays behind.

    Args:
        upload: a Django UploadedFile (.zip of an image folder, .npz, .csv).
        options: more of the data section (size, channels, label_column, split ...).
    """
    limit = settings.LAYERLAB_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise DataError(
            f"the upload is {upload.size} bytes, the limit is {limit}",
            hint="raise LAYERLAB_UPLOAD_MAX_MB",
            where="file",
        )
    kind = upload_kind(upload.name)
    if Dataset.objects.filter(project=project, name=name).exists():
        raise DatasetError(f"project '{project.name}' already has a dataset named '{name}'", where="name")
    relative = f"datasets/{project.id}/{uuid.uuid4().hex}"
    folder = Path(default_storage.path(relative))
    folder.mkdir(parents=True)
    try:
        stored = folder / f"upload{Path(upload.name).suffix.lower()}"
        with open(stored, "wb") as handle:
            for chunk in upload.chunks():
                handle.write(chunk)
        if kind == "imagefolder":
            path = extract_image_zip(stored, folder / "images", limit)
            stored.unlink()
        else:
            check_arrays(stored, kind)
            path = stored
        data = {**(options or {}), "source": kind, "path": str(path)}
        data_section_check(data)
        with transaction.atomic():
            dataset = Dataset.objects.create(
                project=project,
                name=name,
                kind=Dataset.Kind.UPLOAD,
                data=data,
                created_by=user,
                info={"status": "pending"},
            )
            dataset_inspect_on_commit(dataset.id)
        return dataset
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
