"""chart-tools.js in a real browser (no server): toolbar, EMA smoothing, log scale, drag zoom, CSV, dashed legends."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "src/layerlab/web/static/web"
CHART_JS = STATIC / "vendor/node_modules/chart.js/dist/chart.umd.min.js"
CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="/usr/bin/chromium is absent (apt-get install chromium)"
    ),
    pytest.mark.skipif(not CHART_JS.exists(), reason="Chart.js is not installed (make install runs npm ci)"),
]

PAGE = """<!doctype html><html><body>
<div style="width: 600px"><figure style="position: relative; height: 300px; margin: 0">
<canvas id="chart-loss" aria-label="loss"></canvas><figcaption>Loss</figcaption></figure></div>
</body></html>"""

MAKE = """() => {
  const chart = LL.lineChart(document.getElementById("chart-loss"), "loss", [
    LL.line("train loss", "#1f5fbf"),
    LL.line("validation loss", "#c2410c", { borderDash: [6, 3] }),
  ]);
  chart.data.datasets[0].data = [1, 2, 3, 4, 5, 6].map((x) => ({ x: x, y: 10 / x }));
  chart.data.datasets[1].data = [1, 2, 3, 4, 5, 6].map((x) => ({ x: x, y: 12 / x }));
  chart.update("none");
  window.chart = chart;
}"""


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.set_content(PAGE)
        for script in (CHART_JS, STATIC / "charts.js", STATIC / "chart-tools.js"):
            page.add_script_tag(path=str(script))
        page.evaluate(MAKE)
        yield page
        assert errors == []
        browser.close()


def test_every_line_chart_gets_the_toolbar(page):
    assert page.locator(".chart-tools").count() == 1
    for name in ("PNG", "CSV"):
        assert page.get_by_role("button", name=name).is_visible()
    assert page.get_by_label("log").count() == 1 and page.get_by_label("smoothing").count() == 1


def test_the_dashed_series_legend_shows_its_dash(page):
    items = page.evaluate(
        "() => chart.legend.legendItems.map((i) => ({ text: i.text, style: i.pointStyle, dash: i.lineDash }))"
    )
    assert items == [
        {"text": "train loss", "style": "line", "dash": []},
        {"text": "validation loss", "style": "line", "dash": [6, 3]},
    ]


def test_smoothing_is_a_debiased_ema_and_csv_keeps_raw_values(page):
    assert page.evaluate("() => LLChartTools.smooth([{x: 1, y: 4}, {x: 2, y: 4}], 0.9).map((p) => p.y)") == [
        pytest.approx(4),
        pytest.approx(4),
    ]
    page.get_by_label("smoothing").fill("0.5")
    smoothed = page.evaluate("() => chart.data.datasets[0].data.map((p) => p.y)")
    assert smoothed[0] == pytest.approx(10) and smoothed[1] == pytest.approx(
        5 / 0.75
    )  # (0.5*5 + 0.5*5) / (1 - 0.5**2)
    csv = page.evaluate("() => LLChartTools.seriesCSV(chart)").splitlines()
    assert csv[0] == "series,epoch,value" and csv[2] == "train loss,2,5"
    page.get_by_label("smoothing").fill("0")
    assert page.evaluate("() => chart.data.datasets[0].data[1].y") == 5


def test_log_scale_toggle_and_drag_to_zoom_then_reset(page):
    page.get_by_label("log").check()
    assert page.evaluate("() => chart.scales.y.type") == "logarithmic"
    page.get_by_label("log").uncheck()
    assert page.evaluate("() => chart.scales.y.type") == "linear"
    box = page.locator("#chart-loss").bounding_box()
    area = page.evaluate("() => chart.chartArea")
    left, right = box["x"] + area["left"], box["x"] + area["right"]
    y = box["y"] + (area["top"] + area["bottom"]) / 2
    page.mouse.move(left + (right - left) * 0.4, y)
    page.mouse.down()
    page.mouse.move(left + (right - left) * 0.8, y, steps=4)
    page.mouse.up()
    low, high = page.evaluate("() => [chart.scales.x.min, chart.scales.x.max]")
    assert 2.5 < low < 3.5 and 4.5 < high < 5.5
    page.get_by_role("button", name="Reset zoom").click()
    assert page.evaluate("() => [chart.scales.x.min, chart.scales.x.max]") == [1, 6]
