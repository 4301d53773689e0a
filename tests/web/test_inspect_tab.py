"""The run page's "What it learned" tab: the page (Django client) and, in a real browser (Playwright +
Debian's Chromium against ``layerlab serve`` with a worker), a small trained run whose grids load."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from livelab import LiveLab  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "Long-enough-pass-42"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CONFIG = {
    "data": {"source": "digits", "split": {"method": "random", "val": 0.1, "test": 0.2}},
    "model": {"preset": "lenet5", "options": {"channels": [4, 8]}},
    "train": {"epochs": 1, "batch_size": 64, "num_threads": 1},
}


@pytest.mark.django_db
def test_the_tab_is_linked_from_the_run_page_and_hidden_from_others(signed_in, finished_run):
    viewer = signed_in("viewer")
    page = viewer.get(f"/runs/{finished_run.id}/").content.decode()
    assert f'href="/runs/{finished_run.id}/learned/"' in page and "What it learned" in page
    tab = viewer.get(f"/runs/{finished_run.id}/learned/")
    assert tab.status_code == 200
    html = tab.content.decode()
    assert f'data-api="/api/runs/{finished_run.id}/inspect/"' in html
    assert 'id="pick-layer"' in html and 'id="upload-file"' in html and "csrfmiddlewaretoken" in html
    assert "learned.js" in html
    assert signed_in("stranger").get(f"/runs/{finished_run.id}/learned/").status_code == 404


@pytest.mark.django_db
def test_a_run_without_weights_says_so(signed_in, people):
    from layerlab.apps.runs.services import run_create

    run = run_create(project=people["project"], user=people["owner"], config={"train": {"epochs": 1}})
    html = signed_in("owner").get(f"/runs/{run.id}/learned/").content.decode()
    assert "no checkpoint to look inside" in html and 'id="learned"' not in html


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = LiveLab(tmp_path_factory.mktemp("inspectweb") / "home")
    lab.home.mkdir()
    lab.env["LAYERLAB_THROTTLE_USER"] = "100000/min"
    lab.cli("migrate", "--quiet")
    lab.api = lab.user_client("alice")
    lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1")
    lab.wait_up(lab.api)
    lab.url = f"http://127.0.0.1:{lab.port}"
    yield lab
    lab.stop()


@pytest.mark.e2e
@pytest.mark.skipif(not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)")
def test_the_tab_shows_the_grids_of_a_trained_run(lab):
    from playwright.sync_api import sync_playwright

    project = lab.api.request("POST", "projects/", {"name": "inspect"})
    run = lab.api.request("POST", "runs/", {"project": project["id"], "config": CONFIG, "name": "digits"})
    assert lab.api.wait(run["id"], timeout=300)["status"] == "succeeded"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        # wait_for_function evaluates its predicate, which the page's CSP forbids: bypassed for the test.
        page = browser.new_page(viewport={"width": 1280, "height": 900}, bypass_csp=True)
        page.set_default_timeout(60_000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.goto(f"{lab.url}/signin/")
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{lab.url}/")
        page.goto(f"{lab.url}/runs/{run['id']}/")
        page.get_by_role("link", name="What it learned").click()
        page.wait_for_url(f"{lab.url}/runs/{run['id']}/learned/")
        page.locator("#examples button.example").first.click()
        grid = page.locator("#activations figure.chosen img")
        grid.wait_for(state="visible")
        # The grid image really loaded (a broken image has no natural width).
        page.wait_for_function(
            "() => { const img = document.querySelector('#activations figure.chosen img');"
            " return img && img.complete && img.naturalWidth > 0; }"
        )
        assert "computed" in page.locator("#learned-status").inner_text()
        assert page.locator("#attributions figure").count() >= 3
        assert "sanity" in page.locator("#attributions").inner_text()
        page.select_option("#pick-layer", "conv1")
        page.fill("#pick-channel", "1")
        page.get_by_role("button", name="Show this layer and channel").click()
        page.wait_for_function(
            "() => document.querySelector('#activations figure.chosen')?.dataset.layer === 'conv1'"
        )
        browser.close()
    assert errors == [], errors
