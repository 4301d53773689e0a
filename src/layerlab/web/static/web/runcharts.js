// The run page's line charts: one per group of the run's metric series (the server groups them:
// loss-like together, accuracy-like together, the learning rate and the epoch time each their own,
// any other name its own chart), kept up to date from the metrics API.
window.LLRunCharts = (function () {
  "use strict";
  const [blue, orange] = LL.palette;

  function label(name) {
    if (name.startsWith("val_")) return `validation ${name.slice(4).replaceAll("_", " ")}`;
    return name.replaceAll("_", " ");
  }

  function dataset(name, index) {
    if (name.startsWith("train")) return LL.line(label(name), blue);
    if (name.startsWith("val")) return LL.line(label(name), orange, { borderDash: [6, 3] });
    return LL.line(label(name), LL.palette[(index + 2) % LL.palette.length]);
  }

  function build(groups) {
    return groups.map((group) => {
      const canvas = document.getElementById(group.id);
      const sets = group.names.map(dataset);
      if (group.gap) {
        // The validation accuracy is filled to the train accuracy: the shaded band is the overfitting gap.
        sets[group.names.indexOf("val_accuracy")].fill = {
          target: group.names.indexOf("train_accuracy"),
          above: "rgba(4,120,87,0.15)",
          below: "rgba(194,65,12,0.18)",
        };
      }
      const y = { title: { display: true, text: group.y } };
      if (group.y === "accuracy") Object.assign(y, { suggestedMin: 0, suggestedMax: 1 });
      const chart = LL.lineChart(canvas, group.y, sets, {
        scales: { x: { type: "linear", title: { display: true, text: group.x }, ticks: { precision: 0 } }, y: y },
      });
      return { group: group, canvas: canvas, chart: chart };
    });
  }

  // Returns the names in the answer that no chart shows (a logged run that started a new series).
  function update(charts, series) {
    const shown = new Set();
    for (const { group, canvas, chart } of charts) {
      let count = 0;
      group.names.forEach((name, i) => {
        shown.add(name);
        chart.data.datasets[i].data = LL.points(series[name]);
        count = Math.max(count, (series[name] && series[name].total) || 0);
      });
      chart.update("none");
      canvas.dataset.points = String(count);
      if (group.gap) {
        const train = series.train_accuracy && series.train_accuracy.values.at(-1);
        const val = series.val_accuracy && series.val_accuracy.values.at(-1);
        const text = document.getElementById("gap-text");
        if (text && typeof train === "number" && typeof val === "number") {
          text.textContent = `(last gap train − validation: ${(100 * (train - val)).toFixed(1)} points)`;
        }
      }
    }
    return Object.keys(series).filter((name) => !shown.has(name));
  }

  return { build: build, update: update };
})();
