// Chart helpers shared by the dashboard pages (Chart.js from the project's own npm install, no CDN).
window.LL = (function () {
  "use strict";
  // Colour-blind-friendly, dark enough for contrast on white.
  const palette = ["#1f5fbf", "#c2410c", "#047857", "#7c3aed", "#b91c1c", "#0e7490", "#a16207", "#be185d"];

  async function getJSON(url) {
    const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  function points(series) {
    if (!series) return [];
    return series.steps.map((step, i) => ({ x: step, y: series.values[i] }));
  }

  function lineChart(canvas, yTitle, datasets, extra) {
    return new Chart(canvas, {
      type: "line",
      data: { datasets: datasets },
      options: Object.assign(
        {
          animation: false,
          responsive: true,
          maintainAspectRatio: false,
          parsing: false,
          normalized: true,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: { type: "linear", title: { display: true, text: "epoch" }, ticks: { precision: 0 } },
            y: { title: { display: true, text: yTitle } },
          },
          plugins: { legend: { position: "bottom" } },
        },
        extra || {}
      ),
    });
  }

  function line(label, color, options) {
    return Object.assign(
      { label: label, data: [], borderColor: color, backgroundColor: color, pointRadius: 1.5, borderWidth: 2 },
      options || {}
    );
  }

  return { palette: palette, getJSON: getJSON, points: points, lineChart: lineChart, line: line };
})();
