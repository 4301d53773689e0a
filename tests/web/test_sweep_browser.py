"""The sweep page in a real browser (Playwright + Debian's Chromium) against ``layerlab serve``: a real sweep,
its trials table fed 10,000 trials (the trials endpoint answered by the test), sorted and filtered, the
charts drawn, the best-run button, and no script error under the page's CSP."""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from livelab import LiveLab  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
CHART_JS = ROOT / "src/layerlab/web/static/web/vendor/node_modules/chart.js/dist/chart.umd.min.js"
PASSWORD = "Long-enough-pass-42"
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
TRIALS = 10_000

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"
    ),
    pytest.mark.skipif(not CHART_JS.exists(), reason="Chart.js is not installed (make install runs npm ci)"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = LiveLab(tmp_path_factory.mktemp("sweepweb") / "home")
    lab.home.mkdir()
    lab.cli("migrate", "--quiet")
    lab.api = lab.user_client("alice")
    lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "1")
    lab.wait_up(lab.api)
    lab.url = f"http://127.0.0.1:{lab.port}"
    yield lab
    lab.stop()


def synthetic_trials() -> dict:
    rng = random.Random(0)
    states = ["complete"] * 7 + ["pruned", "failed", "running"]
    rows = []
    for n in range(TRIALS):
        state = rng.choice(states)
        value = round(rng.random(), 4) if state in ("complete", "pruned") else None
        rows.append(
            [n, state, value, rng.randint(1, 9), None, None, 10 ** rng.uniform(-4, -1), rng.choice([16, 32])]
        )
    columns = ["number", "state", "value", "epochs", "run", "run_status", "train.lr", "train.batch_size"]
    return {"columns": columns, "params": columns[-2:], "rows": rows}


def test_sweep_page_renders_10000_trials_sorts_and_filters(lab):
    from playwright.sync_api import sync_playwright

    project = lab.api.request("POST", "projects/", {"name": "sweeps"})
    config = {
        "data": {"source": "spiral", "points_per_class": 20},
        "model": {"preset": "mlp"},
        "train": {"epochs": 1, "num_threads": 1},
        "sweep": {"method": "grid", "parameters": {"train.lr": [0.01]}},
    }
    sweep = lab.api.request("POST", "sweeps/", {"project": project["id"], "config": config, "name": "web"})
    body = json.dumps(synthetic_trials())
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
        page.goto(f"{lab.url}/signin/")
        page.get_by_label("User name").fill("alice")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{lab.url}/")
        page.route(
            f"**/api/sweeps/{sweep['id']}/trials/",
            lambda route: route.fulfill(status=200, content_type="application/json", body=body),
        )
        page.goto(f"{lab.url}/sweeps/{sweep['id']}/")
        page.wait_for_selector("#trials[data-ready='1']", timeout=30_000)
        assert page.locator("#trials-body tr").count() == TRIALS
        print(
            f"sweep page: {TRIALS} trial rows built in {page.locator('#trials').get_attribute('data-render-ms')} ms"
        )
        assert page.locator("#trial-count").inner_text() == f"{TRIALS} of {TRIALS} trials"
        assert page.locator("#sweep-parallel").get_attribute("data-lines") != "0"
        page.get_by_role("button", name="value").click()  # ascending: the lowest value first
        first = float(page.locator("#trials-body tr").first.locator("td").nth(2).inner_text())
        assert first == min(r[2] for r in json.loads(body)["rows"] if r[2] is not None)
        page.select_option("#trial-state", "pruned")
        pruned = sum(1 for r in json.loads(body)["rows"] if r[1] == "pruned")
        assert page.locator("#trials-body tr").count() == pruned
        assert page.locator("#trial-count").inner_text() == f"{pruned} of {TRIALS} trials"
        browser.close()
    assert errors == [], errors
