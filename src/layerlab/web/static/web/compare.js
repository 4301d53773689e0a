// The compare page: every run's train and validation curves overlaid by epoch.
(function () {
  "use strict";
  const runs = JSON.parse(document.getElementById("compare-runs").textContent);
  const accuracy = LL.lineChart(document.getElementById("cmp-acc"), "accuracy", []);
  const loss = LL.lineChart(document.getElementById("cmp-loss"), "loss", []);
  Promise.all(runs.map((run) => LL.getJSON(`/api/runs/${run.id}/metrics/?points=500`))).then((all) => {
    all.forEach((data, i) => {
      const color = LL.palette[i % LL.palette.length];
      const s = data.series;
      const label = runs[i].label;
      accuracy.data.datasets.push(LL.line(`${label} val`, color, { data: LL.points(s.val_accuracy) }));
      accuracy.data.datasets.push(LL.line(`${label} train`, color, { data: LL.points(s.train_accuracy), borderDash: [5, 4], pointRadius: 0 }));
      loss.data.datasets.push(LL.line(`${label} val`, color, { data: LL.points(s.val_loss) }));
      loss.data.datasets.push(LL.line(`${label} train`, color, { data: LL.points(s.train_loss), borderDash: [5, 4], pointRadius: 0 }));
    });
    accuracy.update("none");
    loss.update("none");
    document.getElementById("cmp-acc").dataset.series = String(accuracy.data.datasets.length);
  });
})();
