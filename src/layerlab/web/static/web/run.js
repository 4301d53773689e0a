// The run page: loss and accuracy curves (train vs validation) kept up to date by polling the metrics API.
(function () {
  "use strict";
  const live = JSON.parse(document.getElementById("run-live").textContent);
  const perClass = JSON.parse(document.getElementById("perclass-data").textContent);
  const names = ["train_loss", "val_loss", "train_accuracy", "val_accuracy"];
  const metricsUrl = `/api/runs/${live.run}/metrics/?points=500&name=${names.join(",")}`;
  const [blue, orange] = LL.palette;

  const lossCanvas = document.getElementById("chart-loss");
  const loss = LL.lineChart(lossCanvas, "loss", [
    LL.line("train loss", blue),
    LL.line("validation loss", orange, { borderDash: [6, 3] }),
  ]);
  // The validation curve is filled to the train curve: the shaded band is the overfitting gap.
  const acc = LL.lineChart(
    document.getElementById("chart-acc"),
    "accuracy",
    [
      LL.line("train accuracy", blue),
      LL.line("validation accuracy", orange, {
        borderDash: [6, 3],
        fill: { target: "-1", above: "rgba(4,120,87,0.15)", below: "rgba(194,65,12,0.18)" },
      }),
    ],
    { scales: { x: { type: "linear", title: { display: true, text: "epoch" }, ticks: { precision: 0 } },
                y: { title: { display: true, text: "accuracy" }, suggestedMin: 0, suggestedMax: 1 } } }
  );

  async function refreshCurves() {
    const data = await LL.getJSON(metricsUrl);
    const s = data.series;
    loss.data.datasets[0].data = LL.points(s.train_loss);
    loss.data.datasets[1].data = LL.points(s.val_loss);
    acc.data.datasets[0].data = LL.points(s.train_accuracy);
    acc.data.datasets[1].data = LL.points(s.val_accuracy);
    loss.update("none");
    acc.update("none");
    const count = (s.train_loss && s.train_loss.total) || 0;
    lossCanvas.dataset.points = String(count);
    const train = s.train_accuracy && s.train_accuracy.values.at(-1);
    const val = s.val_accuracy && s.val_accuracy.values.at(-1);
    if (typeof train === "number" && typeof val === "number") {
      document.getElementById("gap-text").textContent =
        `(last gap train − validation: ${(100 * (train - val)).toFixed(1)} points)`;
    }
  }

  function showStatus(run) {
    const head = document.getElementById("run-status");
    const badge = head.querySelector('[data-field="status"]');
    badge.textContent = run.status;
    badge.className = `badge s-${run.status}`;
    const bar = head.querySelector('[data-field="progress"]');
    bar.max = run.progress.epochs || 1;
    bar.value = run.progress.epoch;
    head.querySelector('[data-field="progress-text"]').textContent = run.progress.text;
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
