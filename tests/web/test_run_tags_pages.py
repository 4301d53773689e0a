"""Dashboard: tags (chips, ?tag=, editor), inline rename, the Where filter, "run again with changes"."""

from __future__ import annotations

import pytest

from layerlab.apps.runs.models import Run, RunTag

pytestmark = pytest.mark.django_db


def token_of(browser) -> str:
    return browser.get("/").cookies["csrftoken"].value


def test_rename_and_tags_from_the_run_page_editors_only_with_csrf(signed_in, finished_run):
    url = f"/runs/{finished_run.id}/"
    viewer = signed_in("viewer")
    assert b"Rename or tag" not in viewer.get(url).content
    assert viewer.post(f"{url}rename/", {"name": "x"}).status_code == 403  # no CSRF token
    assert (
        viewer.post(f"{url}rename/", {"name": "x", "csrfmiddlewaretoken": token_of(viewer)}).status_code
        == 403
    )
    assert signed_in("stranger").post(f"{url}tags/", {"tags": "a"}).status_code in (403, 404)

    editor = signed_in("editor")
    token = token_of(editor)
    assert b"Rename or tag" in editor.get(url).content
    response = editor.post(f"{url}rename/", {"name": "new <i>name</i>", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    response = editor.post(f"{url}tags/", {"tags": "baseline, mlp", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    finished_run.refresh_from_db()
    assert finished_run.name == "new <i>name</i>"
    assert list(finished_run.tags.values_list("name", flat=True)) == ["baseline", "mlp"]
    page = editor.get(url).content.decode()
    assert "new &lt;i&gt;name&lt;/i&gt;" in page and 'href="/?tag=baseline"' in page

    bad = editor.post(f"{url}tags/", {"tags": "two words", "csrfmiddlewaretoken": token}, follow=True)
    assert "tag &#x27;two words&#x27; is not allowed" in bad.content.decode()
    assert RunTag.objects.filter(run=finished_run).count() == 2  # unchanged


def test_runs_table_shows_tag_chips_and_filters_by_tag_and_expression(signed_in, people, finished_run):
    RunTag.objects.create(run=finished_run, name="baseline")
    other = Run.objects.create(
        project=people["project"],
        name="other run",
        status=Run.Status.SUCCEEDED,
        config={"train": {"lr": 0.5}},
        summary={"test_accuracy": 0.99},
    )
    browser = signed_in("viewer")
    page = browser.get("/").content.decode()
    assert 'class="chip" href="?tag=baseline"' in page
    tagged = browser.get("/", {"tag": "baseline"}).content.decode()
    assert f'href="/runs/{finished_run.id}/"' in tagged and f'href="/runs/{other.id}/"' not in tagged
    best = browser.get("/", {"filter": "metric.test_accuracy>0.9"}).content.decode()
    assert f'href="/runs/{other.id}/"' in best and f'href="/runs/{finished_run.id}/"' not in best
    low_lr = browser.get("/", {"filter": "config.train.lr<0.1"}).content.decode()
    assert f'href="/runs/{finished_run.id}/"' in low_lr and f'href="/runs/{other.id}/"' not in low_lr
    bad = browser.get("/", {"filter": "metric.test_accuracy>lots"})
    assert bad.status_code == 400
    assert "Filter not applied" in bad.content.decode() and "not a number" in bad.content.decode()


def test_run_again_with_changes_prefills_the_new_run_form(signed_in, finished_run):
    RunTag.objects.create(run=finished_run, name="baseline")
    finished_run.status = Run.Status.FAILED
    finished_run.save()
    editor = signed_in("editor")
    page = editor.get(f"/runs/{finished_run.id}/").content.decode()
    assert f'href="/runs/new/?from={finished_run.id}"' in page
    assert (
        "Run again with changes" not in signed_in("viewer").get(f"/runs/{finished_run.id}/").content.decode()
    )
    form = editor.get(f"/runs/new/?from={finished_run.id}").content.decode()
    assert 'value="baseline"' in form and "again" in form
    response = editor.post(
        "/runs/new/",
        {
            "csrfmiddlewaretoken": token_of(editor),
            "project": finished_run.project_id,
            "name": "again",
            "dataset": "builtin:spiral",
            "preset": "mlp",
            "epochs": 2,
            "lr": 0.01,
            "batch_size": 16,
            "overrides": "",
            "tags": "baseline, retry",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    again = Run.objects.get(name="again")
    assert list(again.tags.values_list("name", flat=True)) == ["baseline", "retry"]
