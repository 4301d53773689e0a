// The run page: a chart per group of metric series (runcharts.js) kept up to date by polling the metrics API.
(function () {
  "use strict";
  const live = JSON.parse(document.getElementById("run-live").textContent);
  const perClass = JSON.parse(document.getElementById("perclass-data").textContent);
  // One chart per group of series (the server's grouping, in #metric-charts); all series are fetched,
  // so a series a logged run starts later is noticed and the page drawn again with its chart.
  const groups = JSON.parse(document.getElementById("metric-charts").textContent);
  const metricsUrl = `/api/runs/${live.run}/metrics/?points=500`;
  const [blue] = LL.palette;
  const charts = LLRunCharts.build(groups);

  async function refreshCurves() {
    const data = await LL.getJSON(metricsUrl);
    const unseen = LLRunCharts.update(charts, data.series);
    if (unseen.length && !live.finished) window.location.reload();
  }

  function showStatus(run) {
    const head = document.getElementById("run-status");
    const badge = head.querySelector('[data-field="status"]');
    badge.textContent = run.status;
    badge.className = `badge s-${run.status}`;
    const bar = head.querySelector('[data-field="progress"]');
    if (bar && run.progress.epochs) {  // a logged run has no epoch count: no bar
      bar.max = run.progress.epochs;
      bar.value = run.progress.epoch;
      head.querySelector('[data-field="progress-text"]').textContent = run.progress.text;
    }
    if (run.status !== "queued") {
      // The "Run N queued" note of the page that started it is stale once the run runs.
      document.querySelectorAll(".messages li").forEach((item) => {
        if (item.textContent.startsWith(`Run ${live.run} queued`)) item.remove();
      });
      document.querySelectorAll(".messages:not(:has(li))").forEach((list) => list.remove());
    }
  }

  async function poll() {
    try {
      await refreshCurves();
      if (live.finished) return;
      const run = await LL.getJSON(`/api/runs/${live.run}/`);
      showStatus(run);
      if (["succeeded", "failed", "cancelled"].includes(run.status)) {
        // The last epochs first, then the page is drawn again with the summary, matrix and checkpoints.
        await refreshCurves();
        window.setTimeout(() => window.location.reload(), 500);
        return;
      }
    } catch (error) {
      document.getElementById("curves-note").textContent = `Could not update the curves (${error.message}); retrying.`;
    }
    window.setTimeout(poll, 1500);
  }

  if (perClass.labels.length) {
    new Chart(document.getElementById("chart-perclass"), {
      type: "bar",
      data: { labels: perClass.labels, datasets: [{ label: "test accuracy", data: perClass.values, backgroundColor: blue }] },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, indexAxis: perClass.labels.length > 12 ? "y" : "x",
        scales: { y: { suggestedMin: 0, suggestedMax: 1 } }, plugins: { legend: { display: false } },
      },
    });
  }
  poll();
})();
