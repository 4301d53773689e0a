"""The pipelines pages: the list, one pipeline's stages with links to their runs, 404 for others' pipelines."""

from __future__ import annotations

import pytest

from layerlab.apps.pipelines.services import pipeline_close, pipeline_open, pipeline_stage_set
from layerlab.apps.runs.models import Run

pytestmark = pytest.mark.django_db

SPEC = {
    "name": "chain",
    "project": "lab",
    "stages": {
        "base": {"kind": "train", "options": {}, "inputs": {}, "after": [], "identity": "a" * 20},
        "holdout": {
            "kind": "evaluate",
            "options": {},
            "inputs": {"run": "base"},
            "after": [],
            "identity": "b" * 20,
        },
    },
}


@pytest.fixture
def pipeline(people):
    record = pipeline_open(project=people["project"], user=people["owner"], name="chain<b>", spec=SPEC)
    run = Run.objects.create(project=people["project"], name="chain/base", status=Run.Status.SUCCEEDED)
    pipeline_stage_set(
        pipeline_id=record.id,
        name="base",
        state="done",
        result={"run": run.id, "metrics": {"val_accuracy": 0.9}},
    )
    pipeline_stage_set(pipeline_id=record.id, name="holdout", state="failed", error="data: the data ran out")
    pipeline_close(pipeline_id=record.id, succeeded=False, error="stage 'holdout' (evaluate) failed")
    return record, run


def test_list_and_detail_show_states_and_link_runs(signed_in, pipeline):
    record, run = pipeline
    browser = signed_in("viewer")
    listing = browser.get("/pipelines/").content.decode()
    assert f'href="/pipelines/{record.id}/"' in listing and "chain&lt;b&gt;" in listing
    page = browser.get(f"/pipelines/{record.id}/").content.decode()
    assert f'href="/runs/{run.id}/"' in page and "val_accuracy 0.9" in page
    assert "data: the data ran out" in page and 'href="#stage-base"' in page
    assert "<script>" not in page.split("</head>")[-1]  # CSP: no inline script


def test_a_pipeline_of_a_project_one_may_not_see_is_404(signed_in, pipeline):
    record, _ = pipeline
    assert signed_in("stranger").get(f"/pipelines/{record.id}/").status_code == 404
    assert b"chain" not in signed_in("stranger").get("/pipelines/").content
    assert signed_in("owner").get("/pipelines/99999999999999999999/").status_code == 404
