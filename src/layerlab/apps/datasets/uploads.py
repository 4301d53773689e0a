"""Uploaded datasets: a zip of an image folder, an ``.npz`` or a ``.csv``, checked before anything is kept."""

from __future__ import annotations

import contextlib
import shutil
import uuid
import zipfile
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.core.files.storage import FileSystemStorage, default_storage
from django.db import transaction

from layerlab.apps.datasets.limits import decode_limits
from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.services import DatasetError, data_section_check, dataset_inspect_on_commit
from layerlab.apps.projects.models import Project
from layerlab.core.errors import DataError
from layerlab.data.limits import DecodeLimits, array_bytes_check, image_pixels_check

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
KINDS = {".zip": "imagefolder", ".npz": "npz", ".csv": "csv"}
COPY_CHUNK = 1024 * 1024


def upload_kind(filename: str) -> str:
    suffix = Path(filename).suffix.lower()
    if suffix not in KINDS:
        raise DataError(
            f"'{filename}' is not a .zip, .npz or .csv file",
            hint="zip an image folder, or send arrays",
            where="file",
        )
    return KINDS[suffix]


def too_much_data(size: int, cap: int) -> DataError:
    """The error of an archive that unpacks to more than ``LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_MB``."""
    return DataError(
        f"the archive unpacks to {'more than ' if size > cap else ''}{size:,} bytes, "
        f"above the limit of {cap:,} bytes",
        hint="upload a smaller archive, or raise LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_MB on the lab server",
        where="file",
    )


def zip_members_check(archive: zipfile.ZipFile, max_bytes: int) -> list[zipfile.ZipInfo]:
    """The archive's files, once the sizes its central directory declares fit within ``max_bytes``."""
    members = [m for m in archive.infolist() if not m.is_dir()]
    declared = sum(m.file_size for m in members)
    if declared > max_bytes:
        raise too_much_data(declared, max_bytes)
    return members


def zip_member_copy(archive: zipfile.ZipFile, member: zipfile.ZipInfo, destination: Path, budget: int) -> int:
    """Unpack one member, counting what is written (sizes in headers can lie); returns the budget left."""
    with archive.open(member) as src, open(destination, "wb") as dst:
        while chunk := src.read(COPY_CHUNK):
            budget -= len(chunk)
            if budget < 0:
                raise DataError(
                    "the archive unpacks to more than its headers declare",
                    hint="upload an archive made by a standard zip tool",
                    where="file",
                )
            dst.write(chunk)
    return budget


def extract_image_zip(
    source: Path, target: Path, max_bytes: int | None = None, limits: DecodeLimits | None = None
) -> Path:
    """Unpack a zip of ``class/image`` files safely; returns the folder holding the class folders.

    Nothing is written before the central directory's sizes fit ``max_bytes`` and every image's
    header fits ``limits.max_image_pixels``; the bytes written are counted as they are unpacked.

    Args:
        max_bytes: what the zip may unpack to (default: LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES).
        limits: the pixel cap per image (default: from the settings).
    """
    max_bytes = settings.LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES if max_bytes is None else max_bytes
    limits = decode_limits() if limits is None else limits
    if not zipfile.is_zipfile(source):
        raise DataError("the upload is not a readable zip archive", where="file")
    with zipfile.ZipFile(source) as archive:
        members = zip_members_check(archive, max_bytes)
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
        for member, _ in images:  # headers first: a bomb is refused before anything is unpacked
            with archive.open(member) as stream:
                image_header_check(stream, member.filename, limits)
        budget = max_bytes
        for member, name in images:
            destination = target.joinpath(*name.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            budget = zip_member_copy(archive, member, destination, budget)
            check_image(destination, member.filename)
    return class_root(target)


def class_root(target: Path) -> Path:
    """The folder holding the class folders (a single top-level folder wrapping them is common)."""
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


def image_header_check(stream, name: str, limits: DecodeLimits) -> None:
    """Refuse a file that is not an image, or whose header declares more pixels than the limit.

    Only the header is read (``Image.open`` without ``load``): nothing is decoded.
    """
    from PIL import Image

    try:
        with Image.open(stream) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise DataError(
            f"'{name}' declares too many pixels",
            hint="send a smaller image, or raise LAYERLAB_MAX_IMAGE_PIXELS on the lab server",
            where="file",
        ) from None
    except Exception:
        raise not_an_image(name) from None
    try:
        image_pixels_check(width, height, name, limits)
    except DataError as exc:
        raise DataError(exc.message, hint=exc.hint, where="file") from None


def not_an_image(name: str) -> DataError:
    return DataError(
        f"'{name}' in the zip is not an image that can be decoded",
        hint="remove it or replace it with a readable image",
        where="file",
    )


def check_image(path: Path, name: str) -> None:
    """Refuse a file named like an image that does not decode as one (header and structure only)."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.verify()
    except Exception:
        raise not_an_image(name) from None


def check_arrays(
    path: Path, kind: str, max_bytes: int | None = None, limits: DecodeLimits | None = None
) -> None:
    """Open an npz (without pickles) or a csv far enough to know it is one, and within the limits.

    An npz's central directory must declare at most ``max_bytes`` (LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES)
    and each array's header at most ``limits.max_array_bytes``; nothing is inflated to find out.
    """
    import numpy as np

    max_bytes = settings.LAYERLAB_MAX_UPLOAD_UNCOMPRESSED_BYTES if max_bytes is None else max_bytes
    limits = decode_limits() if limits is None else limits
    try:
        if kind == "npz":
            with np.load(path, allow_pickle=False) as arrays:
                if not arrays.files:
                    raise DataError("the .npz holds no arrays", where="file")
                for member in zip_members_check(arrays.zip, max_bytes):
                    with arrays.zip.open(member) as stream:
                        try:
                            array_bytes_check(stream, PurePosixPath(member.filename).stem, limits)
                        except DataError as exc:
                            raise DataError(exc.message, hint=exc.hint, where="file") from None
        else:
            with open(path, encoding="utf-8") as handle:
                header = handle.readline()
            if "," not in header:
                raise DataError("the .csv has no comma-separated columns", where="file")
    except DataError:
        raise
    except Exception as exc:
        # The reason in words only: the library's message may quote the file's bytes.
        raise DataError(f"cannot read the {kind} upload ({type(exc).__name__})", where="file") from None


def storage_local(name: str) -> Path | None:
    """The stored file ``name`` itself when the default storage is this machine's file system, else None."""
    storage = default_storage
    if isinstance(storage, FileSystemStorage):
        return Path(storage.location) / PurePosixPath(name)
    return None


def upload_folder(stored: str) -> Path:
    """Where an upload is read and unpacked on this machine: ``LAYERLAB_CACHE_DIR/uploads/<project>/<uuid>``."""
    _, project, key, _ = PurePosixPath(stored).parts
    return Path(settings.LAYERLAB_CACHE_DIR) / "uploads" / project / key


def upload_local(stored: str, kind: str) -> Path:
    """The data path of a stored upload on this machine, made from the storage when missing.

    A zip is unpacked into ``upload_folder(stored)/images`` (returns the class folders' parent);
    an npz or csv is the stored file itself on a file-system storage, else a copy in that folder.

    Args:
        stored: the storage name, ``datasets/<project>/<uuid>/upload.<ext>``.
        kind: ``imagefolder``, ``npz`` or ``csv`` (a zip unpacks within the settings' limits).
    """
    folder = upload_folder(stored)
    images = folder / "images"
    if kind == "imagefolder" and images.is_dir():
        return class_root(images)
    local = storage_local(stored)
    if kind != "imagefolder" and local is not None:
        return local
    if local is None:
        local = folder / PurePosixPath(stored).name
        if not local.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            part = folder / f".{local.name}.part"
            with default_storage.open(stored, "rb") as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst, 1024 * 1024)
            part.replace(local)
    if kind != "imagefolder":
        return local
    unpacking = folder / ".images.part"
    shutil.rmtree(unpacking, ignore_errors=True)
    root = extract_image_zip(local, unpacking)
    unpacking.replace(images)  # whole or not at all, so a half-unpacked folder is never read
    if local.parent == folder:
        local.unlink()  # the zip's fetched copy; the images are what is read
    return images / root.relative_to(unpacking)


def upload_restore(path: str) -> str:
    """``path`` of an uploaded dataset made on this machine when it is missing (recorded elsewhere).

    Data paths of uploads end in ``uploads/<project>/<uuid>/...`` (the cache) or
    ``datasets/<project>/<uuid>/upload.<ext>`` (the file-system storage); anything else is returned as is.
    """
    if not path or Path(path).exists():
        return path
    parts = Path(path).parts
    for index in range(len(parts) - 3, -1, -1):
        if parts[index] in ("uploads", "datasets") and len(parts[index + 2]) == 32:
            prefix = f"datasets/{parts[index + 1]}/{parts[index + 2]}"
            try:
                names = default_storage.listdir(prefix)[1]
            except (FileNotFoundError, NotImplementedError):
                return path
            stored = [n for n in names if n.startswith("upload.")]
            if not stored:
                return path
            return str(upload_local(f"{prefix}/{stored[0]}", KINDS.get(Path(stored[0]).suffix, "csv")))
    return path


def dataset_upload(*, project: Project, user, name: str, upload, options: dict | None = None) -> Dataset:
    """Keep an uploaded file in the storage as a dataset; on any error nothing stays behind.

    The upload is saved through the storage API (``datasets/<project>/<uuid>/upload.<ext>``) and
    checked, unpacked and later read from a local copy (``upload_local``).

    Args:
        upload: a Django UploadedFile (.zip of an image folder, .npz, .csv).
        options: more of the data section (size, channels, label_column, split ...).
    """
    limit = settings.LAYERLAB_UPLOAD_MAX_BYTES
    if upload.size > limit:
        raise DataError(
            f"the upload is {upload.size} bytes, the limit is {limit}",
            hint="send a smaller file, or raise LAYERLAB_UPLOAD_MAX_MB on the lab server",
            where="file",
        )
    kind = upload_kind(upload.name)
    if Dataset.objects.filter(project=project, name=name).exists():
        raise DatasetError(f"project '{project.name}' already has a dataset named '{name}'", where="name")
    stored = f"datasets/{project.id}/{uuid.uuid4().hex}/upload{Path(upload.name).suffix.lower()}"
    saved = None
    try:
        saved = default_storage.save(stored, upload)
        path = upload_local(saved, kind)
        if kind != "imagefolder":
            check_arrays(path, kind)
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
        shutil.rmtree(upload_folder(stored), ignore_errors=True)
        if saved is not None:
            default_storage.delete(saved)
            local = storage_local(saved)
            if local is not None:  # the empty <project>/<uuid> folder too
                with contextlib.suppress(OSError):
                    local.parent.rmdir()
        raise
