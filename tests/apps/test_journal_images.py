"""Journal images: checked on upload (real raster image, size and pixel caps, no SVG), kept in the storage,
served only to people who may see the project; the entry form's preview renders without saving."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

pytestmark = pytest.mark.django_db


@pytest.fixture
def signed_in(people):
    """``signed_in(name)`` -> a Django test client with that user's session (CSRF checks on)."""
    from django.test import Client

    def make(name: str):
        browser = Client(enforce_csrf_checks=True)
        browser.force_login(people[name])
        return browser

    return make


def csrf(browser) -> str:
    return browser.get("/").cookies["csrftoken"].value


def png(size=(8, 6)) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, "red").save(buffer, format="PNG")
    return buffer.getvalue()


def post_entry(browser, project, image, **extra):
    return browser.post(
        "/journal/new/",
        {"csrfmiddlewaretoken": csrf(browser), "project": project.id, "title": "pics", "date": "2026-01-02",
         "body": "Before.", "image": image, **extra},
    )  # fmt: skip


def test_an_image_uploaded_with_an_entry_is_stored_linked_and_served_to_members_only(signed_in, people):
    from django.core.files.storage import default_storage

    from layerlab.apps.journal.models import Entry, EntryImage

    project = people["project"]
    response = post_entry(signed_in("editor"), project, SimpleUploadedFile("plot.png", png(), "image/png"))
    assert response.status_code == 302
    image = EntryImage.objects.get()
    assert (
        image.project == project
        and (image.width, image.height) == (8, 6)
        and image.content_type == "image/png"
    )
    assert default_storage.exists(image.file.name) and image.file.name.startswith(f"journal/{project.id}/")
    entry = Entry.objects.get(title="pics")
    assert entry.body.startswith("Before.") and f"![plot](/journal/images/{image.id}/)" in entry.body
    # The journal shows it (the sanitizer keeps lab images), and a viewer of the project can fetch it.
    viewer = signed_in("viewer")
    assert f'src="/journal/images/{image.id}/"' in viewer.get("/journal/").content.decode()
    served = viewer.get(f"/journal/images/{image.id}/")
    assert served.status_code == 200 and served["Content-Type"] == "image/png"
    assert served["X-Content-Type-Options"] == "nosniff" and b"".join(served.streaming_content) == png()
    # Someone who cannot see the project gets 404, as for an id that does not exist.
    assert signed_in("stranger").get(f"/journal/images/{image.id}/").status_code == 404
    assert viewer.get(f"/journal/images/{image.id + 1}/").status_code == 404


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "not a PNG"),
        ("fake.png", b"\x89PNG\r\n\x1a\nnot really", "not a PNG"),
        ("doc.png", b"%PDF-1.4 hello", "not a PNG"),
    ],
)
def test_what_is_not_a_raster_image_is_refused(signed_in, people, name, content, message):
    from layerlab.apps.journal.models import Entry, EntryImage

    response = post_entry(signed_in("editor"), people["project"], SimpleUploadedFile(name, content))
    assert response.status_code == 200 and message in response.content.decode()
    assert not EntryImage.objects.exists() and not Entry.objects.filter(title="pics").exists()


def test_size_and_pixel_caps(people, monkeypatch):
    from layerlab.apps.journal import services

    project, user = people["project"], people["editor"]
    monkeypatch.setattr(services, "IMAGE_MAX_PIXELS", 40)
    with pytest.raises(services.JournalError, match="pixels"):
        services.entry_image_add(
            project=project, user=user, upload=SimpleUploadedFile("big.png", png((8, 6)))
        )
    monkeypatch.setattr(services, "IMAGE_MAX_BYTES", 50)
    with pytest.raises(services.JournalError, match="MiB at most"):
        services.entry_image_add(project=project, user=user, upload=SimpleUploadedFile("big.png", png()))
    assert not services.EntryImage.objects.exists()


def test_preview_renders_without_saving_and_keeps_the_uploaded_image(signed_in, people):
    from layerlab.apps.journal.models import Entry, EntryImage

    editor = signed_in("editor")
    page = post_entry(
        editor, people["project"], SimpleUploadedFile("p.png", png()), preview="1",
        body="# Title\n\n```\ncode <b>\n```\n![far](https://tracker.example/p.gif)",
    )  # fmt: skip
    html = page.content.decode()
    assert page.status_code == 200 and not Entry.objects.exists()
    image = EntryImage.objects.get()
    assert "<h1>Title</h1>" in html and "code &lt;b&gt;" in html and 'tracker.example/p.gif"' not in html
    assert f'src="/journal/images/{image.id}/"' in html  # previewed, and the text now refers to it
    assert f"![p](/journal/images/{image.id}/)" in html  # in the textarea, so Save keeps it
    live = editor.post(
        "/journal/preview/", {"csrfmiddlewaretoken": csrf(editor), "body": "*hi* <script>x</script>"}
    )
    assert live.json()["html"].strip() == "<p><em>hi</em> &lt;script&gt;x&lt;/script&gt;</p>"
    assert editor.post("/journal/preview/", {"body": "x"}).status_code == 403  # CSRF


def test_entry_form_has_no_inline_script(signed_in, people):
    import re

    html = signed_in("editor").get("/journal/new/").content.decode()
    assert 'enctype="multipart/form-data"' in html and "/static/web/journal.js" in html
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_api_upload_answers_the_markdown_for_editors_only(client_for, people):
    project = people["project"]

    def upload(user, content=None, **fields):
        data = {"project": project.id, "file": SimpleUploadedFile("a.png", content or png()), **fields}
        return client_for(people[user]).post("/api/journal/images/", data, format="multipart")

    done = upload("editor")
    assert done.status_code == 201, done.content
    body = done.json()
    assert body["markdown"] == f"![a](/journal/images/{body['id']}/)" and (body["width"], body["height"]) == (
        8,
        6,
    )
    assert upload("viewer").status_code == 403
    assert upload("stranger").status_code == 400  # the project "does not exist" for them
    refused = upload("editor", content=b"<svg xmlns='http://www.w3.org/2000/svg'/>")
    assert refused.status_code == 400 and "not a PNG" in refused.json()["detail"]
    assert upload("editor", extra="x").status_code == 400  # unknown fields are named
