"""Datasets: the list, one dataset (classes, counts, sample grid) and the upload form."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.datasets.uploads import dataset_upload
from layerlab.apps.projects.models import Role
from layerlab.core.errors import LayerlabError
from layerlab.web.access import page, projects_with_role, require_role, visible_or_404
from layerlab.web.forms import UploadForm
from layerlab.web.rundetail import config_text


@page
def datasets_list(request):
    datasets = dataset_list_visible(user=request.user)
    return render(request, "web/datasets.html", {"datasets": datasets})


def counts_table(info: dict) -> tuple[list[str], list[tuple[str, list]]]:
    """Classes down, splits across: ``(splits, [(class, [count per split]), ...])`` from the data report."""
    counts = info.get("counts") or {}
    classes = info.get("classes") or []
    splits = [s for s in ("train", "val", "test") if s in counts]
    rows = []
    for index, name in enumerate(classes):
        rows.append((name, [_count(counts[s], name, index) for s in splits]))
    return splits, rows


def _count(split_counts, name: str, index: int):
    if isinstance(split_counts, dict):
        return split_counts.get(name, split_counts.get(str(index), 0))
    if isinstance(split_counts, list) and index < len(split_counts):
        return split_counts[index]
    return 0


@page
def dataset_detail(request, dataset_id: int):
    dataset = visible_or_404(dataset_list_visible(user=request.user), dataset_id)
    info = dataset.info or {}
    splits, rows = counts_table(info)
    shape = info.get("input_shape") or []
    return render(
        request,
        "web/dataset_detail.html",
        {
            "dataset": dataset,
            "info": info,
            "splits": splits,
            "rows": rows,
            "is_images": len(shape) == 3,
            "pending": info.get("status") == "pending",
            "data_text": config_text(dataset.data),
        },
    )


@page
def dataset_upload_page(request):
    """Upload a zip of class folders (or .npz / .csv) into a project where the user is an editor."""
    projects = projects_with_role(request.user, Role.EDITOR)
    form = UploadForm(request.POST or None, request.FILES or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = {"size": data["size"]} if data.get("size") else {}
        try:
            require_role(request.user, data["project"], Role.EDITOR)
            dataset = dataset_upload(
                project=data["project"],
                user=request.user,
                name=data["name"],
                upload=data["file"],
                options=options,
            )
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            messages.success(request, f"Dataset '{dataset.name}' uploaded; a worker reads it now.")
            return redirect("web:dataset", dataset_id=dataset.id)
    return render(request, "web/dataset_upload.html", {"form": form, "projects": projects})
