"""The confusion matrix's cells opened: the test examples of one (true, predicted) pair, as JSON."""

from __future__ import annotations

from django.http import JsonResponse

from layerlab.apps.runs.gallery import run_misclassified
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.errors import LayerlabError
from layerlab.web.access import page, visible_or_404


def class_param(request, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


@page
def run_misclassified_cell(request, run_id: int):
    """``?true=i&predicted=j`` -> ``{"true", "predicted", "total", "items"}``; 404 for a run the user may not see."""
    run = visible_or_404(run_list_visible(user=request.user), run_id)
    true, predicted = class_param(request, "true"), class_param(request, "predicted")
    if true is None or predicted is None:
        return JsonResponse(
            {"error": "bad_request", "detail": "give true=<row> and predicted=<column> (class indices)"},
            status=400,
        )
    try:
        return JsonResponse(run_misclassified(run=run, true=true, predicted=predicted))
    except LayerlabError as exc:
        return JsonResponse(exc.as_dict(), status=400)
