"""The experiment page in a real browser (Playwright + Debian's Chromium) against ``layerlab serve``: an
experiment run by the lab's worker, then its page: results table, findings, the Chart.js charts drawn, the
PNG plots loaded, trial links, and no script error under the page's CSP."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from livelab import LiveLab  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
CHART_JS = ROOT / "src/layerlab/web/static/web/vendor/node_modules/chart.js/dist/chart.umd.min.js"
PASSWORD = "Long-enough-pass-42"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"
    ),
    pytest.mark.skipif(not CHART_JS.exists(), reason="Chart.js is not installed (make install runs npm ci)"),
]

CONFIG = {
    "name": "browser-seeds",
    "data": {"source": "spiral", "classes": 3, "points_per_class": 15},
    "model": {"preset": "mlp", "options": {"hidden": [6]}},
    "train": {"epochs": 1, "num_threads": 1},
    "experiment": {"kind": "seeds", "seeds": [0, 1]},
}


def test_experiment_page_draws_table_charts_and_plots(tmp_path):
    from playwright.sync_api import sync_playwright

    lab = LiveLab(tmp_path / "home")
    lab.home.mkdir()
    try:
        lab.cli("migrate", "--quiet")
        api = lab.user_client("alice")
        lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1")
        lab.wait_up(api)
        url = f"http://127.0.0.1:{lab.port}"
        project = api.request("POST", "projects/", {"name": "research"})
        experiment = api.request("POST", "experiments/", {"project": project["id"], "config": CONFIG})
        deadline = time.monotonic() + 240
        while experiment["status"] == "running" and time.monotonic() < deadline:
            time.sleep(1.0)
            experiment = api.request("GET", f"experiments/{experiment['id']}/")
        assert experiment["status"] == "finished", lab.logs()
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
            page.goto(f"{url}/signin/")
            page.get_by_label("User name").fill("alice")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(f"{url}/")
            page.get_by_role("link", name="Experiments").click()
            page.get_by_role("link", name="browser-seeds").click()
            page.wait_for_selector("#chart-0[data-ready='1']", timeout=30_000)
            assert page.locator("#results tbody tr").count() == 2
            assert "test_accuracy" in page.locator("#findings").inner_text()
            image = page.locator("img.plot").first
            image.wait_for()
            assert page.evaluate("(img) => img.complete && img.naturalWidth > 0", image.element_handle())
            page.locator("#trials a").first.click()
            page.wait_for_url(f"{url}/runs/*/")
            browser.close()
        assert errors == [], errors
    finally:
        lab.stop()
