// The experiment page: each report plot drawn with Chart.js from the config the server built
// (research/plots.py chart_config); intervals (lo/hi) shown in the tooltip.
(function () {
  "use strict";
  const node = document.getElementById("experiment-charts");
  if (!node || typeof Chart === "undefined") return;
  const charts = JSON.parse(node.textContent);
  charts.forEach((chart, i) => {
    const canvas = document.getElementById(`chart-${i}`);
    if (!canvas) return;
    const config = chart.config;
    config.options = config.options || {};
    config.options.maintainAspectRatio = false;
    config.options.plugins = config.options.plugins || {};
    config.options.plugins.tooltip = {
      callbacks: {
        afterLabel(ctx) {
          const lo = (ctx.dataset.lo || [])[ctx.dataIndex];
          const hi = (ctx.dataset.hi || [])[ctx.dataIndex];
          return lo !== undefined && lo !== null && hi !== undefined && hi !== null
            ? `interval [${Number(lo).toPrecision(4)}, ${Number(hi).toPrecision(4)}]`
            : "";
        },
      },
    };
    canvas.dataset.ready = "1";
    new Chart(canvas, config);
  });
})();
