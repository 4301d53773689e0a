"""The dashboard in a real browser (Playwright + Debian's Chromium) against ``layerlab serve`` with a worker.

One lab for the module; the tests run in order and share it: sign in, a run from the new-run page
whose curve grows live until it succeeds, compare, upload a dataset, predict, the journal, and a
second user who sees none of it. Screenshots go to test-output/screenshots/ for a reviewer.
"""

from __future__ import annotations

import io
import re
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "server"))
from livelab import LiveLab  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
CHART_JS = ROOT / "src/layerlab/web/static/web/vendor/node_modules/chart.js/dist/chart.umd.min.js"
SHOTS = ROOT / "test-output" / "screenshots"
PASSWORD = "Long-enough-pass-42"
LAUNCH_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run",
]  # fmt: skip

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"
    ),
    pytest.mark.skipif(not CHART_JS.exists(), reason="Chart.js is not installed (make install runs npm ci)"),
]
state: dict = {}


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def png(color: tuple[int, int, int], shape: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (16, 16), "white")
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse((3, 3, 12, 12), fill=color)
    else:
        draw.rectangle((3, 3, 12, 12), fill=color)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = LiveLab(tmp_path_factory.mktemp("web") / "home")
    lab.home.mkdir()
    lab.env["LAYERLAB_THROTTLE_USER"] = "100000/min"
    lab.cli("migrate", "--quiet")
    state["api"] = lab.user_client("alice")
    lab.cli("createuser", "bob", stdin=f"{PASSWORD}\n")
    lab.start("serve", "--port", str(lab.port), "--workers", "1", "--web-workers", "2")
    lab.wait_up(state["api"])
    lab.url = f"http://127.0.0.1:{lab.port}"
    yield lab
    lab.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        browser.close()


def sign_in(browser, lab, name: str, **context_options):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, **context_options)
    context.set_default_timeout(30_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: "Content Security Policy" in msg.text and errors.append(msg.text))
    page.goto(f"{lab.url}/")
    assert page.url.startswith(f"{lab.url}/signin/")
    page.get_by_label("User name").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{lab.url}/")
    page.errors = errors
    return page


@pytest.fixture(scope="module")
def alice(browser, lab):
    # Playwright's wait_for_function polls string predicates with eval, which the pages' CSP forbids;
    # the phone test below browses with the policy in force.
    page = sign_in(browser, lab, "alice", bypass_csp=True)
    yield page
    assert page.errors == [], page.errors  # no JavaScript error on any page
    page.context.close()


def test_sign_in_and_create_a_project(alice, lab):
    shot(alice, "01-runs-empty")
    alice.get_by_role("link", name="Projects").click()
    alice.get_by_role("link", name="New project").click()
    alice.get_by_label("Name").fill("browser-lab")
    alice.get_by_label("Description").fill("made by the browser test")
    alice.get_by_role("button", name="Create").click()
    alice.wait_for_url(re.compile(r"/projects/\d+/$"))
    state["project"] = int(alice.url.rstrip("/").split("/")[-1])
    assert "Your role: owner" in alice.inner_text("main")
    shot(alice, "02-project")


def test_new_run_page_checks_shapes_then_the_run_trains_with_live_curves(alice, lab):
    # The run page records its curve's point count every 100 ms, with the page load it was seen in
    # (sessionStorage survives the reload that draws the summary).
    alice.add_init_script(
        "setInterval(() => { const c = document.getElementById('chart-loss');"
        " if (!c || c.dataset.points === undefined) return;"
        " const seen = JSON.parse(sessionStorage.seen || '[]');"
        " seen.push([performance.timeOrigin, Number(c.dataset.points)]);"
        " sessionStorage.seen = JSON.stringify(seen); }, 100);"
    )
    alice.goto(f"{lab.url}/runs/new/")
    status = alice.locator("#shape-status")
    alice.wait_for_function("document.getElementById('shape-status').textContent.startsWith('OK')")
    assert "603 parameters" in status.inner_text()  # mlp [100] on spiral: 2*100+100 + 100*3+3
    alice.get_by_label("Spec (JSON, optional)").fill(
        '[{"kind": "linear", "out": 8}, {"kind": "conv2d", "out": 4}]'
    )
    alice.wait_for_function("document.getElementById('shape-status').className === 'shape-bad'")
    assert "conv2d #1" in status.inner_text() and "needs an image" in status.inner_text()
    shot(alice, "03-new-run-shape-error")
    alice.get_by_label("Spec (JSON, optional)").fill("")
    alice.wait_for_function("document.getElementById('shape-status').textContent.startsWith('OK')")
    alice.get_by_role("button", name="Edit the preset's layers here").click()
    assert '"name":"fc1"' in alice.get_by_label("Spec (JSON, optional)").input_value()
    alice.wait_for_function("document.getElementById('shape-status').textContent.includes('603 parameters')")
    alice.get_by_label("Spec (JSON, optional)").fill("")
    alice.wait_for_function("document.getElementById('shape-status').textContent.startsWith('OK')")
    alice.get_by_label("Project").select_option(label="browser-lab")
    alice.get_by_label("Name").fill("spiral from the page")
    alice.get_by_label("Dataset").select_option("builtin:spiral")
    alice.get_by_label("Epochs").fill("3")
    alice.get_by_label("Batch size").fill("16")
    alice.get_by_label("More settings").fill("data.points_per_class=2000\ntrain.num_threads=1")
    shot(alice, "04-new-run")
    alice.get_by_role("button", name="Start the run").click()
    alice.wait_for_url(re.compile(r"/runs/\d+/$"))
    state["run"] = int(alice.url.rstrip("/").split("/")[-1])
    alice.wait_for_function(
        "Number(document.getElementById('chart-loss').dataset.points || 0) >= 1", timeout=90_000
    )
    shot(alice, "05-run-training")
    # The "Run N queued" note goes once the page sees the run start.
    alice.wait_for_function(
        "!(document.querySelector('.messages') || {textContent: ''}).textContent.includes('queued')"
    )
    alice.wait_for_function(
        "document.querySelector('#run-status .badge').textContent === 'succeeded'"
        " && document.querySelector('table.heat') !== null",
        timeout=120_000,
    )
    alice.wait_for_function("Number(document.getElementById('chart-loss').dataset.points || 0) === 3")
    seen = alice.evaluate("JSON.parse(sessionStorage.seen)")
    first_load = [points for origin, points in seen if origin == seen[0][0]]
    # The curve grew in place on the page first opened: fewer points, then all three, no reload needed.
    assert first_load[0] < 3 and first_load[-1] == 3 and first_load == sorted(first_load), seen
    main = alice.inner_text("main")
    assert "epoch 3 of 3" in main and "Per-class accuracy" in main and "Checkpoints" in main
    assert alice.locator("table.heat tbody tr").count() == 3
    assert "fc1" in alice.locator("#h-layers + .table-wrap").inner_text()
    assert alice.locator("#h-journal ~ article.entry").count() == 1  # the lab's entry for the run
    shot(alice, "06-run-succeeded")
    with alice.expect_download() as checkpoint:
        alice.get_by_role("link", name="epoch 3", exact=True).click()
    assert checkpoint.value.suggested_filename == f"run{state['run']}-epoch3.ckpt"
    with alice.expect_download() as exported:
        alice.get_by_role("button", name="safetensors").click()
    assert exported.value.suggested_filename == f"run{state['run']}.safetensors"


def test_runs_table_and_compare_two_runs(alice, lab):
    api = state["api"]
    other = api.submit_run(
        state["project"],
        {"model": {"preset": "mlp", "options": {"hidden": [16]}}, "train": {"epochs": 2, "num_threads": 1}},
        name="narrow mlp",
    )
    assert api.wait(other["id"], timeout=120)["status"] == "succeeded"
    alice.goto(f"{lab.url}/")
    assert alice.locator("table.runs tbody tr").count() == 2
    alice.get_by_label(f"compare run {state['run']}").check()
    alice.get_by_label(f"compare run {other['id']}").check()
    shot(alice, "07-runs-table")
    alice.get_by_role("button", name="Compare selected runs").click()
    alice.wait_for_url(re.compile(r"/compare/\?runs="))
    alice.wait_for_function("document.getElementById('cmp-acc').dataset.series === '4'")
    differences = alice.locator("#h-diff + .table-wrap").inner_text()
    assert "model.options.hidden" in differences and "train.epochs" in differences
    shot(alice, "08-compare")


def test_a_run_logged_from_a_script_charts_every_series_it_logs(alice, lab):
    api = state["api"]
    run = api.start_run(state["project"], name="my script")
    for step in (1, 2, 3):
        api.log_metrics(
            run["id"], {"loss": 1 / step, "accuracy": 0.3 * step, "lr": 0.01, "grad_norm": 2.0}, step=step
        )
    alice.goto(f"{lab.url}/runs/{run['id']}/")
    for caption in ("Loss", "Accuracy", "Learning rate", "grad_norm"):
        alice.locator(f"figure:has(figcaption:text-is('{caption}')) canvas[data-points='3']").wait_for()
    assert (
        "epoch 0 of 0" not in alice.inner_text("main") and alice.locator("#run-status progress").count() == 0
    )
    # A series the script starts later gets its own chart on the open page.
    api.log_metrics(run["id"], {"perplexity": 7.0}, step=4)
    alice.locator("figure:has(figcaption:text-is('perplexity')) canvas[data-points='1']").wait_for()
    api.finish_run(run["id"], summary={"test_accuracy": 0.9})
    alice.wait_for_function("document.querySelector('#run-status .badge').textContent === 'succeeded'")
    entry = alice.locator("#h-journal ~ article.entry")  # drawn again with the lab's journal entry
    entry.wait_for()
    assert "0 layers" not in entry.inner_text() and "logged from a script" in entry.inner_text()
    assert alice.get_by_role("link", name="Predict").count() == 0
    shot(alice, "08b-logged-run")


def test_upload_an_image_folder_dataset(alice, lab, tmp_path):
    archive = tmp_path / "shapes.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(8):
            shade = (40 + 20 * i, 20, 160)
            zf.writestr(f"shapes/circle/c{i}.png", png(shade, "circle"))
            zf.writestr(f"shapes/square/s{i}.png", png(shade, "square"))
    alice.goto(f"{lab.url}/datasets/upload/")
    alice.get_by_label("Project").select_option(label="browser-lab")
    alice.get_by_label("Name").fill("shapes")
    alice.get_by_label("File").set_input_files(str(archive))
    alice.get_by_role("button", name="Upload").click()
    alice.wait_for_url(re.compile(r"/datasets/\d+/$"))
    state["dataset"] = int(alice.url.rstrip("/").split("/")[-1])
    # The page refreshes itself until a worker has read the data.
    alice.wait_for_function(
        "document.getElementById('dataset-status').textContent === 'ready'", timeout=60_000
    )
    alice.wait_for_function("document.querySelector('img.samples')?.naturalWidth > 0")
    assert "circle" in alice.inner_text("main") and "square" in alice.inner_text("main")
    # Each row of the sample grid is named, level with its row of images.
    assert alice.locator(".sample-labels li").all_inner_texts() == ["circle", "square"]
    grid = alice.locator("img.samples").bounding_box()
    square = alice.locator(".sample-labels li").nth(1).bounding_box()
    assert grid["y"] + grid["height"] / 2 < square["y"] + square["height"] / 2 < grid["y"] + grid["height"]
    shot(alice, "09-dataset")


def test_predict_on_an_image(alice, lab, tmp_path):
    api = state["api"]
    run = api.submit_run(
        state["project"], {"model": {"preset": "mlp"}, "train": {"epochs": 2, "num_threads": 1}},
        name="shapes mlp", dataset=state["dataset"],
    )  # fmt: skip
    assert api.wait(run["id"], timeout=120)["status"] == "succeeded"
    image = tmp_path / "query.png"
    image.write_bytes(png((60, 20, 160), "square"))
    alice.goto(f"{lab.url}/runs/{run['id']}/predict/")
    alice.get_by_label("Drop an image here, or choose one").set_input_files(str(image))
    alice.wait_for_function("!document.getElementById('preview').hidden")
    alice.get_by_role("button", name="Predict").click()
    alice.wait_for_selector("#top-class")
    assert alice.inner_text("#top-class") in {"circle", "square"}
    assert alice.locator("#chart-probs").count() == 1 and alice.locator("img.preview").count() == 2
    shot(alice, "10-predict")


def test_journal_entry_in_markdown_is_rendered_safely(alice, lab):
    alice.goto(f"{lab.url}/journal/new/?project={state['project']}&run={state['run']}")
    alice.get_by_label("Title").fill("Spiral notes")
    alice.get_by_label("Text").fill(
        "The **wider** net wins.\n\n- one\n- two\n\n<script>window.pwned = 1</script>\n\n"
        "[bad](javascript:window.pwned=2) <img src=x onerror=window.pwned=3>"
    )
    alice.get_by_role("button", name="Save").click()
    alice.wait_for_url(re.compile(r"/journal/#entry-\d+$"))
    entry = alice.locator("article.entry", has_text="Spiral notes")
    assert entry.locator("strong").inner_text() == "wider"
    assert entry.locator("li").count() == 2
    assert entry.locator("script").count() == 0 and entry.locator("img").count() == 0
    assert "<script>" in entry.inner_text()  # shown as text, not run
    assert alice.evaluate("window.pwned") is None
    assert not entry.locator("a[href^='javascript']").count()
    shot(alice, "11-journal")


def test_new_run_form_follows_the_project_and_flags_bad_settings_at_the_field(alice, lab):
    alice.goto(f"{lab.url}/datasets/{state['dataset']}/")
    assert "Split: random" in alice.inner_text("main")
    alice.get_by_role("link", name="Train on this").click()
    alice.wait_for_url(re.compile(r"/runs/new/\?"))
    dataset = alice.get_by_label("Dataset", exact=True)
    assert dataset.input_value() == f"dataset:{state['dataset']}"
    alice.get_by_label("More settings").fill("train.nope=1")
    alice.wait_for_function("!document.getElementById('id_overrides_live').hidden")
    assert "nope" in alice.inner_text("#id_overrides_live")
    assert alice.get_by_label("More settings").get_attribute("aria-invalid") == "true"
    shot(alice, "11b-new-run-bad-override")
    alice.get_by_label("More settings").fill("train.num_threads=1")
    alice.wait_for_function("document.getElementById('id_overrides_live').hidden")
    # Another project's picker shows built-ins only: the dataset of browser-lab is hidden, and left.
    alice.goto(f"{lab.url}/projects/new/")
    alice.get_by_label("Name").fill("other-lab")
    alice.get_by_role("button", name="Create").click()
    alice.wait_for_url(re.compile(r"/projects/\d+/$"))
    alice.goto(f"{lab.url}/runs/new/?dataset=dataset:{state['dataset']}")
    alice.get_by_label("Project").select_option(label="other-lab")
    option = alice.locator(f"#id_dataset option[value='dataset:{state['dataset']}']")
    assert option.is_disabled() and dataset.input_value().startswith("builtin:")
    alice.get_by_label("Project").select_option(label="browser-lab")
    assert not option.is_disabled()


def test_journal_preview_shows_the_text_before_saving(alice, lab, tmp_path):
    alice.goto(f"{lab.url}/journal/new/?project={state['project']}")
    alice.get_by_label("Text").fill("Loss *falls*.\n\n```\nlr = 0.001\n```")
    alice.wait_for_function("document.querySelector('#entry-preview em')?.textContent === 'falls'")
    assert alice.locator("#entry-preview pre code").inner_text().strip() == "lr = 0.001"
    image = tmp_path / "journal-shot.png"
    image.write_bytes(png((200, 30, 30), "circle"))
    alice.get_by_label("Title").fill("With a picture")
    alice.get_by_label("Add an image").set_input_files(str(image))
    alice.get_by_role("button", name="Save").click()
    alice.wait_for_url(re.compile(r"/journal/#entry-\d+$"))
    picture = alice.locator("article.entry", has_text="With a picture").locator("img")
    picture.wait_for()
    assert alice.evaluate("(img) => img.naturalWidth", picture.element_handle()) == 16
    shot(alice, "11c-journal-image")


def test_a_second_user_sees_nothing_of_the_first_users_project(browser, lab):
    bob = sign_in(browser, lab, "bob")
    assert bob.locator("table.runs tbody tr", has_text="spiral from the page").count() == 0
    bob.goto(f"{lab.url}/projects/")
    assert "browser-lab" not in bob.inner_text("main")
    for url in (f"/runs/{state['run']}/", f"/projects/{state['project']}/", f"/datasets/{state['dataset']}/"):
        response = bob.goto(f"{lab.url}{url}")
        assert response.status == 404, url
    bob.goto(f"{lab.url}/journal/")
    assert "Spiral notes" not in bob.inner_text("main")
    shot(bob, "12-second-user")
    bob.context.close()


def test_pages_read_on_a_phone(browser, lab):
    phone = sign_in(browser, lab, "alice", is_mobile=True, has_touch=True)
    phone.set_viewport_size({"width": 390, "height": 844})
    phone.goto(f"{lab.url}/runs/{state['run']}/")
    # Nothing wider than the screen except inside the scrollable table wrappers.
    overflow = phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, overflow
    # With the Content-Security-Policy in force the curves still draw, and nothing was refused.
    phone.locator("#chart-loss[data-points='3']").wait_for()
    assert phone.errors == [], phone.errors
    shot(phone, "13-run-phone")
    phone.context.close()


def test_owner_shares_the_project_with_a_user_by_name(alice, browser, lab):
    alice.goto(f"{lab.url}/projects/{state['project']}/")
    alice.get_by_label("User or group name").fill("bob")
    alice.get_by_label("Role").select_option("viewer")
    alice.get_by_role("button", name="Share", exact=True).click()
    alice.wait_for_url(re.compile(r"/projects/\d+/$"))
    assert alice.locator("#members tbody tr", has_text="bob").count() == 1
    shot(alice, "14-project-shared")
    bob = sign_in(browser, lab, "bob")
    assert bob.goto(f"{lab.url}/projects/{state['project']}/").status == 200
    assert "Your role: viewer" in bob.inner_text("main")
    bob.context.close()
    alice.get_by_role("button", name="Remove user bob").click()
    alice.wait_for_url(re.compile(r"/projects/\d+/$"))
    assert alice.locator("#members tbody tr", has_text="bob").count() == 0
