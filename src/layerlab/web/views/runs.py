"""The runs table and the run page."""

from __future__ import annotations

from django.shortcuts import render

from layerlab.apps.experiments.selectors import experiment_trial_of_run
from layerlab.apps.journal.selectors import entry_list_visible
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.selectors import project_list_visible, project_role
from layerlab.apps.runs.frames import run_frames
from layerlab.apps.runs.gallery import run_has_test_predictions
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.reconstruction import run_reconstruction
from layerlab.apps.runs.references import config_public, summary_public
from layerlab.apps.runs.selectors import run_list_visible, run_metric_names
from layerlab.apps.runs.summary import summary_displayable
from layerlab.web import rundetail
from layerlab.web.access import page, visible_or_404
from layerlab.web.runtable import RunQuery, run_table_page, verdict_word

SORT_COLUMNS = [
    ("id", "Id"), ("name", "Name"), ("project", "Project"), ("status", "Status"),
    ("val", "Best val."), ("test", "Test acc."), ("started", "Started"),
]  # fmt: skip
# "Created" stays the default order (newest first) without a column: the table must fit a laptop screen.
SHORT_ORIGIN = {Run.Origin.CLI: "layerlab train", Run.Origin.CLIENT: "logged"}


@page
def runs_list(request):
    """Every run the user may see: filters, search, sorting, paging; live progress of running runs."""
    query = RunQuery.from_params(request.GET)
    page_obj = run_table_page(user=request.user, query=query)
    rows = [
        {
            "run": run,
            "verdict_word": verdict_word(run.verdict),
            "val": rundetail.percent(run.val_accuracy),
            "test": rundetail.percent(run.test_accuracy),
            "duration": rundetail.duration(run),
            "origin": SHORT_ORIGIN.get(run.origin, ""),
            "origin_title": rundetail.origin_text(run),
        }
        for run in page_obj
    ]
    params = request.GET.copy()
    params.pop("page", None)
    sort_params = request.GET.copy()
    sort_params.pop("sort", None)
    sort_params.pop("page", None)
    return render(
        request,
        "web/runs.html",
        {
            "rows": rows,
            "page_obj": page_obj,
            "query": query,
            "projects": project_list_visible(user=request.user).only("id", "name"),
            "statuses": Run.Status.values,
            "sort_columns": SORT_COLUMNS,
            "keep": params.urlencode(),
            "keep_sort": sort_params.urlencode(),
        },
        status=400 if query.filter_error else 200,  # the page says why; the other filters still apply
    )


@page
def run_detail(request, run_id: int):
    """One run: live curves, confusion matrix, per-class accuracy, layers, config, checkpoints, lineage."""
    run = visible_or_404(run_list_visible(user=request.user).prefetch_related("checkpoints"), run_id)
    role = project_role(user=request.user, project=run.project)
    # Rows stored before finish checked summaries may hold anything: only what fits the schema is shown.
    summary = summary_displayable(summary_public(run))  # no server paths (data source, init_from)
    per_class = summary.get("per_class_accuracy") or {}
    children = run_list_visible(user=request.user).filter(parent=run).defer("config", "summary")
    entries = entry_list_visible(user=request.user).filter(run=run)
    charts = rundetail.metric_charts(run, run_metric_names(run=run))
    return render(
        request,
        "web/run_detail.html",
        {
            "run": run,
            "role": role,
            "can_edit": role >= Role.EDITOR,
            "can_delete": role >= Role.OWNER,
            # Resume and fine-tune need the lab's own run directory and worker (the services refuse others).
            "lab_trained": run.origin == Run.Origin.SERVER,
            "origin": rundetail.origin_text(run),
            # Predict, resume and export need weights: a logged run or one that failed before its
            # first checkpoint offers none of them.
            "has_weights": rundetail.has_weights(run),
            "logged": run.origin == Run.Origin.CLIENT,
            "charts": charts,
            "has_gap": any(chart["gap"] for chart in charts),
            "diverged": rundetail.diverged(run),
            "summary": summary,
            "figures": [
                (split, rundetail.percent(summary.get(f"{split}_accuracy")), summary.get(f"{split}_loss"))
                for split in ("train", "val", "test")
            ],
            "confusion": rundetail.confusion_cells(summary),
            "gallery": run_has_test_predictions(run),  # its cells open the test examples in them
            "per_class": [(name, rundetail.percent(acc), acc) for name, acc in per_class.items()],
            "per_class_chart": {"labels": list(per_class), "values": list(per_class.values())},
            "layers": rundetail.run_layer_table(run),
            "reconstruction": run_reconstruction(run),  # an autoencoder's report and grid
            "frames": run_frames(run),  # a clip-counting run: the network beside the peak-count baseline
            "config_text": rundetail.config_text(config_public(run)),
            "duration": rundetail.duration(run),
            "experiment_trial": experiment_trial_of_run(run=run),  # a trial of an experiment: its link
            "children": children,
            "entries": entries,
            "live": {"run": run.id, "finished": run.is_finished, "status": run.status},
        },
    )
