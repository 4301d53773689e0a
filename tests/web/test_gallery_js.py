"""gallery.js in a real browser (the server's answers stubbed): a click on a cell shows its examples, escaped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "src/layerlab/web/static/web"
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"
    ),
]

PAGE = """<!doctype html><html><body>
<section id="confusion" data-gallery-url="/runs/7/misclassified/"><table class="heat">
<thead><tr><th>true \\ predicted</th><th>cat</th><th>dog</th></tr></thead>
<tbody><tr><th>cat</th><td>5</td><td class="pick" tabindex="0" role="button" data-true="0" data-predicted="1">2</td></tr>
<tr><th>dog</th><td>1</td><td>6</td></tr></tbody></table>
<div id="gallery" hidden><h3 id="gallery-title"></h3><p id="gallery-note"></p><div id="gallery-items"></div></div>
</section><script src="/static/gallery.js"></script></body></html>"""
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
ANSWER = {
    "run": 7, "true": "cat", "predicted": "dog", "total": 30,
    "items": [{"position": 4, "image": PIXEL, "name": "<b>a.png</b>"}, {"position": 9, "image": PIXEL}],
}  # fmt: skip


def test_clicking_a_cell_shows_its_test_examples(tmp_path):
    from playwright.sync_api import sync_playwright

    asked = []

    def serve(route):
        url = route.request.url
        if url.endswith("/run"):
            return route.fulfill(body=PAGE, content_type="text/html")
        if url.endswith("/static/gallery.js"):
            return route.fulfill(path=str(STATIC / "gallery.js"), content_type="text/javascript")
        asked.append(url)
        return route.fulfill(body=json.dumps(ANSWER), content_type="application/json")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox"]
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.route("http://lab.test/**", serve)
        page.goto("http://lab.test/run")
        cell = page.get_by_role("button", name="2 test examples of cat predicted as dog: show them")
        cell.click()
        page.get_by_text("The first 2 of 30 test examples.").wait_for()
        assert asked == ["http://lab.test/runs/7/misclassified/?true=0&predicted=1"]
        assert page.locator("#gallery-title").text_content() == "cat predicted as dog"
        assert page.locator("#gallery-items img").count() == 2
        assert page.locator("#gallery-items figcaption").all_text_contents() == ["<b>a.png</b>", "#9"]
        assert page.locator("#gallery-items b").count() == 0  # names are text, never markup
        browser.close()
    assert errors == []
