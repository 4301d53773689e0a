"""Predict: drop an image on a run, see its class probabilities."""

from __future__ import annotations

import base64

from django.shortcuts import render

from layerlab.apps.projects.models import Role
from layerlab.apps.runs.predict import run_predict_files
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.errors import LayerlabError
from layerlab.web.access import page, require_role, visible_or_404
from layerlab.web.forms import PredictForm

ECHO_MAX_BYTES = 2 * 1024 * 1024


def image_data_url(upload) -> str:
    """The uploaded image as a ``data:`` URL, to show it next to its probabilities (small images only)."""
    content_type = getattr(upload, "content_type", "") or ""
    if not content_type.startswith("image/") or upload.size > ECHO_MAX_BYTES:
        return ""
    upload.seek(0)
    return f"data:{content_type};base64,{base64.b64encode(upload.read()).decode()}"


@page
def run_predict(request, run_id: int):
    """GET the drop zone; POST one image and show every class's probability from the best checkpoint."""
    run = visible_or_404(run_list_visible(user=request.user), run_id)
    require_role(request.user, run.project, Role.VIEWER)
    form = PredictForm(request.POST or None, request.FILES or None)
    result = None
    if request.method == "POST" and form.is_valid():
        try:
            upload = form.cleaned_data["image"]
            prediction = run_predict_files(run=run, files=[upload], top_k=5)[0]
        except LayerlabError as exc:
            form.add_error(None, exc.one_line())
        else:
            classes = (run.summary or {}).get("classes") or [
                str(i) for i in range(len(prediction["probabilities"]))
            ]
            result = {
                "file": prediction["file"],
                "image": image_data_url(upload),
                "top": prediction["top"],
                "chart": {"labels": classes, "values": prediction["probabilities"]},
            }
    return render(request, "web/predict.html", {"run": run, "form": form, "result": result})
