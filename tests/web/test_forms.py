"""Dashboard writes through forms: new run and its shape check, journal markdown, sharing, uploads."""

from __future__ import annotations

import json

import pytest

from layerlab.web.markdown import render_markdown

pytestmark = pytest.mark.django_db


def csrf(browser) -> str:
    return browser.get("/").cookies["csrftoken"].value


@pytest.mark.parametrize(
    "text, forbidden",
    [
        ("<script>alert(1)</script>", "<script"),
        ("[x](javascript:alert(1))", 'href="javascript'),
        ("[x](JaVaScRiPt:alert(1))", 'href="javascript'),
        ('<img src=x onerror="alert(1)">', "<img"),
        ("![x](data:text/html;base64,PHNjcmlwdD4=)", 'src="data'),
        ('<a href="https://e.org" onclick="x()">y</a>', "<a href"),
    ],
)
def test_markdown_never_lets_script_through(text, forbidden):
    assert forbidden not in render_markdown(text).lower()


def test_markdown_keeps_formatting_and_safe_links():
    html = render_markdown("**b** *i*\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n[site](https://example.org)")
    assert "<strong>b</strong>" in html and "<em>i</em>" in html and "<table>" in html
    assert 'href="https://example.org"' in html and "noopener" in html


def test_markdown_images_load_only_from_this_server():
    html = render_markdown(
        "![a](https://tracker.example/p.png) ![b](//tracker.example/q.png) ![c](/api/x.png)"
    )
    assert "tracker.example" not in html and 'alt="a"' in html
    assert '<img src="/api/x.png" alt="c">' in html


def test_shape_check_answers_the_table_or_the_engines_error(signed_in, people):
    browser = signed_in("editor")
    token = csrf(browser)

    def check(**body):
        response = browser.post(
            "/runs/new/shapes/", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 200
        return response.json()

    good = check(dataset="builtin:spiral", preset="mlp", spec="")
    assert good["ok"] and good["total_params"] == 603 and [r["name"] for r in good["rows"]][0] == "fc1"
    assert [layer["kind"] for layer in good["layers"]] == ["linear", "relu", "linear"]
    spec = json.dumps(
        [{"kind": "flatten"}, {"kind": "linear", "out": 5}, {"kind": "linear", "out": "classes"}]
    )
    assert check(dataset="builtin:digits", spec=spec)["output_shape"] == [10]
    bad = check(dataset="builtin:spiral", spec='[{"kind": "nope"}]')
    assert not bad["ok"] and "nope" in bad["error"]
    assert "not JSON" in check(dataset="builtin:spiral", spec="[{")["error"]
    assert "not found" in check(dataset="dataset:999", preset="mlp")["error"]
    refused = browser.post("/runs/new/shapes/", "{}", content_type="application/json")
    assert refused.status_code == 403  # no CSRF token


def test_new_run_form_queues_a_run_through_the_service(signed_in, people):
    from layerlab.apps.runs.models import Run

    browser = signed_in("editor")
    form = {
        "csrfmiddlewaretoken": csrf(browser), "project": people["project"].id, "name": "from form",
        "dataset": "builtin:spiral", "preset": "mlp", "spec": "", "epochs": 2, "lr": 0.05, "batch_size": 32,
        "overrides": "train.num_threads=1",
    }  # fmt: skip
    response = browser.post("/runs/new/", form)
    run = Run.objects.get(name="from form")
    assert response.status_code == 302 and response["Location"] == f"/runs/{run.id}/"
    assert run.status == "queued" and run.created_by == people["editor"]
    assert run.config["train"]["lr"] == 0.05 and run.config["train"]["num_threads"] == 1
    bad = browser.post("/runs/new/", {**form, "name": "bad", "overrides": "train.nope=1"})
    assert bad.status_code == 200 and not Run.objects.filter(name="bad").exists()
    assert "nope" in bad.content.decode()


def test_a_viewer_cannot_start_a_run_in_a_project_they_only_read(signed_in, people):
    from layerlab.apps.runs.models import Run

    browser = signed_in("viewer")
    page = browser.get("/runs/new/")
    assert b"You need a project where you are an editor" in page.content
    response = browser.post(
        "/runs/new/",
        {"csrfmiddlewaretoken": csrf(browser), "project": people["project"].id, "dataset": "builtin:spiral",
         "preset": "mlp", "epochs": 1, "lr": 0.1, "batch_size": 8},
    )  # fmt: skip
    assert response.status_code == 200 and Run.objects.count() == 0


def test_journal_entries_are_written_and_edited_by_editors_only(signed_in, people, finished_run):
    from layerlab.apps.journal.models import Entry

    editor = signed_in("editor")
    response = editor.post(
        "/journal/new/",
        {"csrfmiddlewaretoken": csrf(editor), "project": people["project"].id, "title": "Notes",
         "date": "2026-01-02", "run": finished_run.id, "body": "# Hi\n<script>x</script>"},
    )  # fmt: skip
    entry = Entry.objects.get(title="Notes")
    assert response.status_code == 302 and entry.run == finished_run and entry.author == people["editor"]
    timeline = editor.get("/journal/").content.decode()
    assert "<h1>Hi</h1>" in timeline and "&lt;script&gt;x&lt;/script&gt;" in timeline
    viewer = signed_in("viewer")
    assert viewer.get(f"/journal/{entry.id}/edit/").status_code == 403
    assert signed_in("stranger").get(f"/journal/{entry.id}/edit/").status_code == 404
    edited = editor.post(
        f"/journal/{entry.id}/edit/",
        {"csrfmiddlewaretoken": csrf(editor), "project": people["project"].id, "title": "Notes 2",
         "date": "2026-01-03", "run": "", "body": "changed"},
    )  # fmt: skip
    entry.refresh_from_db()
    assert edited.status_code == 302 and entry.title == "Notes 2" and entry.run is None


def test_owner_shares_and_unshares_with_groups_others_cannot(signed_in, people):
    from django.contrib.auth.models import Group

    Group.objects.create(name="guests")
    project = people["project"]
    owner = signed_in("owner")
    token = csrf(owner)
    owner.post(
        f"/projects/{project.id}/share/", {"csrfmiddlewaretoken": token, "group": "guests", "role": "editor"}
    )
    assert project.shares.get(group__name="guests").get_role_display() == "editor"
    page = owner.get(f"/projects/{project.id}/").content.decode()
    assert "group guests" in page and "Share this project" in page
    missing = owner.post(
        f"/projects/{project.id}/share/",
        {"csrfmiddlewaretoken": token, "group": "nobody", "role": "viewer"},
        follow=True,
    )
    assert "group &#x27;nobody&#x27; does not exist" in missing.content.decode()
    editor = signed_in("editor")
    refused = editor.post(
        f"/projects/{project.id}/unshare/", {"csrfmiddlewaretoken": csrf(editor), "group": "guests"}
    )
    assert refused.status_code == 403
    assert "Share this project" not in editor.get(f"/projects/{project.id}/").content.decode()
    owner.post(f"/projects/{project.id}/unshare/", {"csrfmiddlewaretoken": token, "group": "guests"})
    assert not project.shares.filter(group__name="guests").exists()


def test_an_upload_that_is_not_an_archive_is_refused_on_the_page(signed_in, people):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from layerlab.apps.datasets.models import Dataset

    browser = signed_in("editor")
    response = browser.post(
        "/datasets/upload/",
        {"csrfmiddlewaretoken": csrf(browser), "project": people["project"].id, "name": "junk",
         "file": SimpleUploadedFile("junk.zip", b"not a zip")},
    )  # fmt: skip
    assert response.status_code == 200 and "not a readable zip" in response.content.decode()
    assert not Dataset.objects.filter(name="junk").exists()


def test_form_labels_have_no_trailing_colon(signed_in, people):
    html = signed_in("owner").get("/runs/new/").content.decode()
    assert (
        '<label for="id_project">Project</label>' in html and '<label for="id_epochs">Epochs</label>' in html
    )


def image_zip() -> bytes:
    import io
    import zipfile

    from PIL import Image

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for label, shade in (("a", 40), ("b", 200)):
            for person in range(4):
                png = io.BytesIO()
                Image.new("RGB", (8, 8), (shade, shade, shade)).save(png, format="PNG")
                archive.writestr(f"{label}/{person}_{label}.png", png.getvalue())
    return buffer.getvalue()


def test_upload_chooses_its_split_and_channels_and_the_dataset_page_says_why(signed_in, people):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from layerlab.apps.datasets.models import Dataset

    browser = signed_in("editor")
    form = {"csrfmiddlewaretoken": csrf(browser), "project": people["project"].id, "name": "faces",
            "split": "group", "group_pattern": "", "val": "0.25", "test": "0.25", "channels": "1"}  # fmt: skip
    missing = browser.post("/datasets/upload/", {**form, "file": SimpleUploadedFile("f.zip", image_zip())})
    assert missing.status_code == 200 and "the group split needs a pattern" in missing.content.decode()
    response = browser.post(
        "/datasets/upload/",
        {**form, "group_pattern": r"(\d+)_", "file": SimpleUploadedFile("f.zip", image_zip())},
    )
    dataset = Dataset.objects.get(name="faces")
    assert response.status_code == 302
    assert dataset.data["split"] == {"method": "group", "val": 0.25, "test": 0.25, "group_pattern": r"(\d+)_"}
    assert dataset.data["channels"] == 1
    page = browser.get(f"/datasets/{dataset.id}/").content.decode()
    assert "Split: group" in page and "Validation 25%, test 25%" in page and "same person" in page
    # An upload without split fields (a script, an old page) writes the engine's default down.
    plain = browser.post(
        "/datasets/upload/",
        {"csrfmiddlewaretoken": csrf(browser), "project": people["project"].id, "name": "plain",
         "file": SimpleUploadedFile("p.zip", image_zip())},
    )  # fmt: skip
    assert plain.status_code == 302
    assert Dataset.objects.get(name="plain").data["split"] == {"method": "random", "val": 0.15, "test": 0.15}
    assert "inflated" in browser.get(f"/datasets/{Dataset.objects.get(name='plain').id}/").content.decode()


def test_new_run_form_defaults_follow_the_engine_and_the_only_project(signed_in, people):
    from layerlab.apps.projects.services import project_create
    from layerlab.train.config import TrainConfig

    editor = signed_in("editor")  # an editor of exactly one project
    html = editor.get("/runs/new/").content.decode()
    assert f'<option value="{people["project"].id}" selected>' in html
    assert f'name="lr" value="{TrainConfig().lr}"' in html
    assert "/static/web/projectfilter.js" in html and 'data-project-filter="id_project"' in html
    project_create(owner=people["editor"], name="second")
    two = editor.get("/runs/new/").content.decode()
    assert f'<option value="{people["project"].id}" selected>' not in two  # a choice to make now


def test_train_on_this_opens_the_new_run_form_with_the_dataset_chosen(signed_in, people):
    from layerlab.apps.datasets.models import Dataset

    dataset = Dataset.objects.create(
        project=people["project"], name="digits copy", kind="builtin", data={"source": "digits"},
        info={"status": "ready"}, created_by=people["owner"],
    )  # fmt: skip
    editor = signed_in("editor")
    page = editor.get(f"/datasets/{dataset.id}/").content.decode()
    link = f"/runs/new/?project={people['project'].id}&amp;dataset=dataset:{dataset.id}"
    assert link in page and "Train on this" in page
    assert "Train on this" not in signed_in("viewer").get(f"/datasets/{dataset.id}/").content.decode()
    form = editor.get(f"/runs/new/?dataset=dataset:{dataset.id}").content.decode()
    option = f'<option value="dataset:{dataset.id}" data-project="{people["project"].id}" selected>'
    assert option in form


def test_live_check_names_the_field_the_engine_would_refuse(signed_in, people):
    browser = signed_in("editor")
    token = csrf(browser)

    def fields(**body):
        body = {"dataset": "builtin:spiral", "preset": "mlp", "spec": "", **body}
        response = browser.post(
            "/runs/new/shapes/", json.dumps(body), content_type="application/json", HTTP_X_CSRFTOKEN=token
        )
        assert response.status_code == 200
        return response.json()["fields"]

    assert fields() == {} and fields(epochs="3", lr="0.01", batch_size="16", overrides="train.l2=0.001") == {}
    assert "nope" in fields(overrides="train.nope=1")["overrides"]
    assert "not key.path=value" in fields(overrides="train.lr")["overrides"]
    assert "expected an integer" in fields(overrides="train.epochs=abc")["overrides"]
    assert set(fields(lr="-1")) == {"lr"} and set(fields(epochs="0")) == {"epochs"}
    html = browser.get("/runs/new/").content.decode()
    assert "/static/web/newrun.js" in html and "<script>" not in html
