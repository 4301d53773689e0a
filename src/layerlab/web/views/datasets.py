"""Datasets: the list, one dataset (classes, counts, sample grid) and the upload form."""

from __future__ import annotations

from django.contrib import messages
from django.shortcuts import redirect, render

from layerlab.apps.datasets.access import data_section_public
from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.datasets.services import dataset_info_public
from layerlab.apps.datasets.uploads import dataset_upload
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.selectors import project_role
from layerlab.apps.runs.services import config_defaults
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


SPLIT_WHY = {
    "random": "Examples are shuffled (stratified by class, seeded) before they are divided. Right when every "
    "example is independent; wrong when several photos show the same person or object: near-copies land on "
    "both sides and the test figure is inflated. Use ordered or group for such data.",
    "ordered": "The last files by name are held out, so neighbouring photos (often one person, one session) "
    "stay on one side. The test figure is closer to what new people will see than with a random split.",
    "group": "Every group (the pattern's capture on the file path) is kept on one side, so the same person "
    "never appears in both training and test: the test figure measures new people, not remembered ones.",
}


def split_summary(data: dict) -> dict:
    """Which split a dataset uses (its data section, engine defaults filled in) and why that matters."""
    split = data.get("split") or {}
    method = split.get("method", "random")
    defaults = config_defaults()
    return {
        "method": method,
        "val": split.get("val", defaults["split_val"]),
        "test": split.get("test", defaults["split_test"]),
        "group_pattern": split.get("group_pattern") or "",
        "why": SPLIT_WHY.get(method, ""),
    }


@page
def dataset_detail(request, dataset_id: int):
    dataset = visible_or_404(dataset_list_visible(user=request.user), dataset_id)
    info = dataset_info_public(dataset)  # errors and source without server paths
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
            "data_text": config_text(data_section_public(dataset.data, dataset=dataset)),
            "split": split_summary(dataset.data or {}),
            "can_train": project_role(user=request.user, project=dataset.project) >= Role.EDITOR
            and info.get("status") != "error",
        },
    )


@page
def dataset_upload_page(request):
    """Upload a zip of class folders (or .npz / .csv) into a project where the user is an editor."""
    projects = projects_with_role(request.user, Role.EDITOR)
    form = UploadForm(request.POST or None, request.FILES or None, projects=projects)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        options = form.data_options()
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
