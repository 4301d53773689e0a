"""Dashboard pages through Django's test client: rendering, scoping (404), roles, CSRF, escaping."""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.django_db
EXTERNAL = re.compile(r"<(script|link|img)[^>]+(src|href)=\"(https?:)?//", re.IGNORECASE)

PAGES = ["/", "/runs/new/", "/compare/", "/datasets/", "/datasets/upload/", "/journal/", "/journal/new/", "/projects/", "/projects/new/"]  # fmt: skip


def test_anonymous_users_are_sent_to_sign_in(client, people):
    for url in PAGES:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/signin/"), url


def test_every_page_renders_for_a_signed_in_user(signed_in, finished_run):
    browser = signed_in("owner")
    for url in [*PAGES, f"/runs/{finished_run.id}/", f"/compare/?runs={finished_run.id}",
                f"/runs/{finished_run.id}/predict/", f"/projects/{finished_run.project_id}/"]:  # fmt: skip
        response = browser.get(url)
        assert response.status_code == 200, url
        # Offline: every script and style sheet comes from this server.
        assert not EXTERNAL.search(response.content.decode()), url


def test_sign_in_with_the_form_and_sign_out_by_post(client, people):
    from django.test import Client

    browser = Client(enforce_csrf_checks=True)
    page = browser.get("/signin/")
    token = page.cookies["csrftoken"].value
    bad = browser.post("/signin/", {"username": "owner", "password": "wrong", "csrfmiddlewaretoken": token})
    assert bad.status_code == 200 and b"did not match" in bad.content
    good = browser.post(
        "/signin/", {"username": "owner", "password": "owner-Secret-pass-42", "csrfmiddlewaretoken": token}
    )
    assert good.status_code == 302 and good["Location"] == "/"
    assert browser.get("/").status_code == 200
    assert browser.get("/signout/").status_code == 405  # a link cannot sign anyone out
    token = browser.cookies["csrftoken"].value
    assert browser.post("/signout/", {"csrfmiddlewaretoken": token}).status_code == 302
    assert browser.get("/").status_code == 302


def test_runs_table_shows_figures_and_escapes_user_text(signed_in, finished_run):
    html = signed_in("viewer").get("/").content.decode()
    assert "spiral &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold</b>" not in html
    assert "80.0%" in html and "75.0%" in html and "overfitting" in html


def test_runs_table_filters_searches_sorts_and_pages(signed_in, people):
    from layerlab.apps.runs.models import Run

    Run.objects.bulk_create(
        Run(project=people["project"], name=f"r{i:03d}", status="failed" if i % 2 else "succeeded",
            summary={"test_accuracy": i / 200})
        for i in range(120)
    )  # fmt: skip
    browser = signed_in("owner")
    first = browser.get("/").context
    assert first["page_obj"].paginator.count == 120 and len(first["rows"]) == 50
    third = browser.get("/?page=3").context
    assert len(third["rows"]) == 20
    failed = browser.get("/?status=failed").context
    assert failed["page_obj"].paginator.count == 60
    assert {row["run"].status for row in failed["rows"]} == {"failed"}
    found = browser.get("/?q=r007").context["rows"]
    assert [row["run"].name for row in found] == ["r007"]
    best = browser.get("/?sort=-test").context["rows"]
    assert best[0]["run"].name == "r119" and best[1]["run"].name == "r118"
    assert browser.get("/?sort=name").context["rows"][0]["run"].name == "r000"
    # Unknown values fall back to defaults instead of failing.
    assert browser.get("/?sort=password&page=x&status=nope&project=abc").status_code == 200


def test_a_stranger_gets_404_for_everything_inside_the_project(signed_in, finished_run):
    browser = signed_in("stranger")
    assert b"spiral" not in browser.get("/").content
    ckpt = finished_run.checkpoints.get()
    for url in [f"/runs/{finished_run.id}/", f"/runs/{finished_run.id}/predict/",
                f"/runs/{finished_run.id}/checkpoints/{ckpt.id}/", f"/projects/{finished_run.project_id}/"]:  # fmt: skip
        assert browser.get(url).status_code == 404, url
    token = browser.get("/").cookies["csrftoken"].value
    for action in ("cancel", "resume", "delete", "fine-tune"):
        response = browser.post(f"/runs/{finished_run.id}/{action}/", {"csrfmiddlewaretoken": token})
        assert response.status_code == 404, action
    compare = browser.get(f"/compare/?runs={finished_run.id}")
    assert compare.context["runs"] == []


def test_run_page_shows_matrix_layers_checkpoints_and_hides_actions_from_viewers(signed_in, finished_run):
    owner = signed_in("owner").get(f"/runs/{finished_run.id}/")
    html = owner.content.decode()
    assert 'class="heat"' in html and "--heat: 0.833" in html
    assert "Delete" in html and "Export the best weights" in html
    assert "chart.umd.min.js" in html and "run-live" in html
    viewer = signed_in("viewer").get(f"/runs/{finished_run.id}/").content.decode()
    assert "Delete" not in viewer and "Fine-tune" not in viewer and "Export the best" not in viewer


def test_checkpoint_download_for_a_viewer(signed_in, finished_run):
    ckpt = finished_run.checkpoints.get()
    response = signed_in("viewer").get(f"/runs/{finished_run.id}/checkpoints/{ckpt.id}/")
    assert response.status_code == 200 and b"".join(response.streaming_content) == b"weights"
    assert "attachment" in response["Content-Disposition"]


def test_actions_need_csrf_and_the_right_role(signed_in, finished_run):
    viewer = signed_in("viewer")
    assert viewer.post(f"/runs/{finished_run.id}/delete/").status_code == 403  # no CSRF token
    token = viewer.get("/").cookies["csrftoken"].value
    assert viewer.post(f"/runs/{finished_run.id}/delete/", {"csrfmiddlewaretoken": token}).status_code == 403
    editor = signed_in("editor")
    token = editor.get("/").cookies["csrftoken"].value
    assert editor.post(f"/runs/{finished_run.id}/delete/", {"csrfmiddlewaretoken": token}).status_code == 403
    owner = signed_in("owner")
    token = owner.get("/").cookies["csrftoken"].value
    response = owner.post(f"/runs/{finished_run.id}/delete/", {"csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert owner.get(f"/runs/{finished_run.id}/").status_code == 404


def test_a_refused_action_is_one_line_on_the_page_not_a_500(signed_in, finished_run):
    owner = signed_in("owner")
    token = owner.get("/").cookies["csrftoken"].value
    response = owner.post(f"/runs/{finished_run.id}/cancel/", {"csrfmiddlewaretoken": token}, follow=True)
    assert response.status_code == 200
    assert f"run {finished_run.id} is already succeeded" in response.content.decode()


def test_fine_tune_from_the_run_page_queues_a_child_run(signed_in, finished_run):
    editor = signed_in("editor")
    token = editor.get("/").cookies["csrftoken"].value
    response = editor.post(
        f"/runs/{finished_run.id}/fine-tune/",
        {"csrfmiddlewaretoken": token, "name": "child", "overrides": "train.lr=0.001\ntrain.epochs=2"},
    )
    from layerlab.apps.runs.models import Run

    child = Run.objects.get(name="child")
    assert response["Location"] == f"/runs/{child.id}/"
    assert child.parent_id == finished_run.id and child.config["train"]["lr"] == 0.001
    assert child.status == "queued"


def test_a_stranger_finds_nothing_through_any_id_filter_or_form(signed_in, people, finished_run):
    from layerlab.apps.datasets.models import Dataset
    from layerlab.apps.journal.services import entry_create

    project = people["project"]
    dataset = Dataset.objects.create(project=project, name="secret-data", data={"source": "spiral"})
    entry = entry_create(project=project, author=people["owner"], title="secret notes", run=finished_run)
    browser = signed_in("stranger")
    token = browser.get("/").cookies["csrftoken"].value
    run = finished_run.id
    for url in [f"/datasets/{dataset.id}/", f"/journal/{entry.id}/edit/", f"/runs/{run}/predict/"]:
        assert browser.get(url).status_code == 404, url
    for url in [f"/runs/{run}/export/", f"/runs/{run}/predict/", f"/projects/{project.id}/share/",
                f"/projects/{project.id}/unshare/", f"/journal/{entry.id}/edit/"]:  # fmt: skip
        response = browser.post(url, {"csrfmiddlewaretoken": token, "format": "onnx", "group": "editors",
                                       "role": "editor", "title": "x", "project": project.id})  # fmt: skip
        assert response.status_code == 404, url
    # Filters and pickers that take an id show nothing of the project.
    pages = [f"/?project={project.id}", f"/journal/?project={project.id}", "/datasets/",
             "/runs/new/", f"/journal/new/?project={project.id}&run={run}", "/datasets/upload/", "/projects/"]  # fmt: skip
    for url in pages:
        html = browser.get(url).content.decode()
        for secret in ("spiral &lt;b&gt;", "secret-data", "secret notes", ">lab<", "shared project"):
            assert secret not in html, (url, secret)
    assert browser.get(f"/?project={project.id}").context["page_obj"].paginator.count == 0
    # Writing into the project, or naming its run or dataset, is refused as if they did not exist.
    shapes = browser.post(
        "/runs/new/shapes/", f'{{"dataset": "dataset:{dataset.id}", "preset": "mlp"}}',
        content_type="application/json", HTTP_X_CSRFTOKEN=token,
    )  # fmt: skip
    assert (
        shapes.json() == {"ok": False, "error": shapes.json()["error"], "fields": {}}
        and "not found" in shapes.json()["error"]
    )
    from layerlab.apps.projects.services import project_create

    own = project_create(owner=people["stranger"], name="mine")
    new_run = browser.post("/runs/new/", {"csrfmiddlewaretoken": token, "project": own.id, "name": "steal",
                                          "dataset": f"dataset:{dataset.id}", "preset": "mlp", "epochs": 1,
                                          "lr": 0.01, "batch_size": 8})  # fmt: skip
    assert new_run.status_code == 200 and "not found" in new_run.content.decode()
    note = browser.post("/journal/new/", {"csrfmiddlewaretoken": token, "project": own.id, "title": "t",
                                          "date": "2026-01-01", "run": run, "body": ""})  # fmt: skip
    assert note.status_code == 200 and f"run {run} not found" in note.content.decode()
    upload = browser.post(
        "/datasets/upload/", {"csrfmiddlewaretoken": token, "project": project.id, "name": "x"}
    )
    assert upload.status_code == 200 and not Dataset.objects.filter(name="x").exists()


def test_a_run_recorded_by_layerlab_train_says_so_and_offers_only_what_works(signed_in, people, finished_run):
    from pathlib import Path

    from layerlab.apps.runs.models import Run

    cli = Run.objects.create(
        project=people["project"], name="from the terminal", origin=Run.Origin.CLI, status=Run.Status.SUCCEEDED,
        config=finished_run.config, epochs=3, epoch=3, worker="laptop:42", run_dir=str(Path(finished_run.run_dir)),
        summary={"test_accuracy": 0.5},
    )  # fmt: skip
    # Its weights are in the run directory (best.ckpt) although no epoch checkpoint row was recorded.
    (Path(cli.run_dir) / "checkpoints" / "best.ckpt").write_bytes(b"best")
    owner = signed_in("owner")
    html = owner.get(f"/runs/{cli.id}/").content.decode()
    assert "trained by layerlab train on laptop:42" in html and cli.run_dir in html
    assert "Fine-tune from this run" not in html  # the service refuses runs trained outside the lab
    assert "Export the best weights" in html
    lab_html = owner.get(f"/runs/{finished_run.id}/").content.decode()
    assert "trained by the lab" in lab_html and "Fine-tune from this run" in lab_html
    cli.status = Run.Status.FAILED
    cli.save()
    failed = owner.get(f"/runs/{cli.id}/").content.decode()
    assert "/resume/" not in failed and f"layerlab train --resume {cli.run_dir}" in failed
    table = owner.get("/").content.decode()
    assert '<span class="tag" title="trained by layerlab train">layerlab train</span>' in table
    assert table.count('class="tag"') == 1  # lab runs carry no tag


def test_a_logged_run_charts_every_series_and_offers_only_what_applies(signed_in, people, client_for):
    from django.test import TestCase

    api = client_for(people["owner"])
    run = api.post("/api/runs/", {"project": people["project"].id, "name": "my script", "origin": "client"}, format="json").json()  # fmt: skip
    points = [
        {"name": name, "step": step, "value": value}
        for step in (1, 2, 3)
        for name, value in (("loss", 1 / step), ("eval_loss", 1.5 / step), ("accuracy", 0.3 * step),
                            ("lr", 0.01), ("grad_norm", 2.0), ("epoch_time", 1.5))
    ]  # fmt: skip
    assert api.post(f"/api/runs/{run['id']}/metrics/", {"points": points}, format="json").status_code == 200
    with TestCase.captureOnCommitCallbacks(execute=True):
        finish = api.post(
            f"/api/runs/{run['id']}/finish/", {"summary": {"test_accuracy": 0.9}}, format="json"
        )
    assert finish.status_code == 200
    page = signed_in("owner").get(f"/runs/{run['id']}/")
    charts = {chart["title"]: chart["names"] for chart in page.context["charts"]}
    assert charts == {
        "Loss": ["eval_loss", "loss"], "Accuracy": ["accuracy"], "grad_norm": ["grad_norm"],
        "Learning rate": ["lr"], "Epoch time": ["epoch_time"],
    }  # fmt: skip
    assert all(chart["x"] == "step" for chart in page.context["charts"])
    html = page.content.decode()
    assert html.count('<canvas id="chart-') == 5 and 'id="metric-charts"' in html
    assert "epoch 0 of 0" not in html and "<progress" not in html
    assert "/predict/" not in html and "/resume/" not in html and "Export the best" not in html
    entry = page.context["entries"].get()
    assert "0 layers" not in entry.title + entry.body and "?" not in entry.title
    assert "logged from a script" in entry.body and "grad_norm" in entry.body and "90.0%" in entry.body
    row = signed_in("owner").get("/").content.decode()
    assert "<td>layers</td>" not in row  # the table does not invent a network for it


def test_a_lab_run_charts_lr_and_epoch_time_beside_loss_and_accuracy(signed_in, finished_run):
    charts = signed_in("owner").get(f"/runs/{finished_run.id}/").context["charts"]
    assert [(c["id"], c["names"]) for c in charts] == [
        ("chart-loss", ["train_loss", "val_loss"]), ("chart-acc", ["train_accuracy"]),
    ]  # fmt: skip
    from layerlab.apps.runs.models import Run

    queued = Run.objects.create(project=finished_run.project, status=Run.Status.QUEUED, epochs=3)
    charts = signed_in("owner").get(f"/runs/{queued.id}/").context["charts"]
    # laid out before the first epoch, so the live page never needs drawing again
    assert [c["id"] for c in charts] == ["chart-loss", "chart-acc", "chart-lr", "chart-seconds"]
    assert charts[1]["gap"] and charts[0]["x"] == "epoch"


def test_a_diverged_run_offers_a_lower_learning_rate_not_resume_predict_or_set(signed_in, people):
    from layerlab.apps.runs.models import Run

    run = Run.objects.create(
        project=people["project"], name="too fast", status=Run.Status.FAILED, epochs=5, epoch=2,
        config={"data": {"source": "spiral", "points_per_class": 50}, "model": {"preset": "mlp"},
                "train": {"epochs": 5, "lr": 1.0, "batch_size": 16}},
        error="diverged at epoch 2: train loss is nan; lower train.lr, e.g. --set train.lr=0.0001, or add "
              "grad_clip; no checkpoint had been written yet",
    )  # fmt: skip
    owner = signed_in("owner")
    html = owner.get(f"/runs/{run.id}/").content.decode()
    assert "diverged at epoch 2: train loss is nan" in html and "--set" not in html
    assert "/resume/" not in html and "/predict/" not in html
    link = f"/runs/new/?from={run.id}&amp;lr=0.1"
    assert f'<a class="button" href="{link}">Run again with a lower learning rate</a>' in html
    form = owner.get(link.replace("&amp;", "&")).context["form"]
    assert form["lr"].value() == 0.1 and form["epochs"].value() == 5 and form["batch_size"].value() == 16
    assert form["dataset"].value() == "builtin:spiral" and form["preset"].value() == "mlp"
    assert "data.points_per_class=50" in form["overrides"].value().splitlines()
    assert form["project"].value() == people["project"].id and form["name"].value() == "too fast again"
    # a viewer sees the cause, not the button; a stranger's ?from= fills nothing
    assert "Run again" not in signed_in("viewer").get(f"/runs/{run.id}/").content.decode()
    stranger = signed_in("stranger").get(f"/runs/new/?from={run.id}").context["form"]
    assert not stranger["name"].value()


def test_runs_table_shows_and_searches_the_datasets_name_and_a_running_runs_time(signed_in, people):
    from datetime import timedelta

    from django.utils import timezone

    from layerlab.apps.datasets.models import Dataset
    from layerlab.apps.runs.models import Run

    photos = Dataset.objects.create(project=people["project"], name="hand signs", kind="imagefolder",
                                    data={"source": "imagefolder", "path": "x"})  # fmt: skip
    started = timezone.now() - timedelta(minutes=2, seconds=5)
    upload = Run.objects.create(project=people["project"], name="on photos", dataset=photos, status="running",
                                config={"data": {"source": "imagefolder"}}, started_at=started,
                                heartbeat_at=started)  # fmt: skip
    Run.objects.create(project=people["project"], name="on spiral", config={"data": {"source": "spiral"}})
    browser = signed_in("owner")
    html = browser.get("/").content.decode()
    assert "<td>hand signs</td>" in html and "<td>spiral</td>" in html and "<td>imagefolder</td>" not in html
    assert "0/0" not in html and "<progress" not in html  # no epoch count known: no progress bar
    assert [row["run"].name for row in browser.get("/?q=signs").context["rows"]] == ["on photos"]
    assert [row["run"].name for row in browser.get("/?q=spiral").context["rows"]] == ["on spiral"]
    row = browser.get("/?q=photos").context["rows"][0]
    assert row["run"].id == upload.id and row["duration"] == "running 2 min"


def test_error_pages_have_the_dashboards_layout_and_the_api_keeps_json(signed_in, finished_run, rf):
    from layerlab.web.views import errors

    owner = signed_in("owner")
    missing = owner.get("/runs/999999/")
    html = missing.content.decode()
    assert missing.status_code == 404 and "<h1>Not found</h1>" in html and 'aria-label="Main"' in html
    assert "app.css" in html and "<script>" not in html  # the layout's own scripts only (CSP)
    viewer = signed_in("viewer")
    token = viewer.get("/").cookies["csrftoken"].value
    refused = viewer.post(f"/runs/{finished_run.id}/cancel/", {"csrfmiddlewaretoken": token})
    assert refused.status_code == 403 and 'aria-label="Main"' in refused.content.decode()
    assert "This needs the" in refused.content.decode()
    no_token = viewer.post(f"/runs/{finished_run.id}/cancel/")
    assert no_token.status_code == 403 and "reload it and try again" in no_token.content.decode()
    assert 'aria-label="Main"' in no_token.content.decode()
    api = owner.get("/api/no-such-thing/")
    assert api.status_code == 404 and api.json() == {"error": "not_found", "detail": "Not found."}
    # 500 and 400 render without the request's context (no user: no navigation), JSON under /api/
    broken = errors.server_error(rf.get("/runs/"))
    assert broken.status_code == 500 and b"Server error" in broken.content and b"app.css" in broken.content
    assert b'aria-label="Main"' not in broken.content
    assert errors.server_error(rf.get("/api/runs/")).status_code == 500
    assert b'"error": "server_error"' in errors.server_error(rf.get("/api/runs/")).content
    bad = errors.bad_request(rf.get("/runs/"))
    assert bad.status_code == 400 and b"Bad request" in bad.content


HUGE = "99999999999999999999999"


def test_out_of_range_ids_in_query_parameters_never_answer_500(signed_in, finished_run):
    browser = signed_in("owner")
    for url in [f"/?project={HUGE}", f"/?page={HUGE}", f"/?q={HUGE}", "/?project=%C2%B2", f"/compare/?runs={HUGE}",
                f"/compare/?runs={finished_run.id}&runs={HUGE}", f"/journal/?project={HUGE}",
                f"/runs/new/?project={HUGE}", f"/runs/new/?from={HUGE}", f"/journal/new/?project={HUGE}&run={HUGE}"]:  # fmt: skip
        assert browser.get(url).status_code == 200, url
    for url in [f"/runs/{HUGE}/", f"/datasets/{HUGE}/", f"/projects/{HUGE}/", f"/runs/{HUGE}/predict/"]:
        assert browser.get(url).status_code == 404, url
