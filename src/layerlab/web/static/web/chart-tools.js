// Tools for every line chart of a page, whoever creates it: drag to zoom (x range) and reset, a log
// scale toggle, EMA smoothing (TensorBoard's, debiased), PNG and CSV export, and legends that show
// each series' dash style. Load it after Chart.js and before the scripts that create charts.
window.LLChartTools = (function () {
  "use strict";
  if (typeof Chart === "undefined") return {};

  // --- Legends: a short line in the series' colour, width and dash instead of a filled box ----------
  const legendLabels = Chart.defaults.plugins.legend.labels;
  const generateLabels = legendLabels.generateLabels;
  legendLabels.usePointStyle = true;
  legendLabels.pointStyleWidth = 34;
  legendLabels.generateLabels = function (chart) {
    const items = generateLabels.call(this, chart);
    for (const item of items) {
      const dataset = chart.data.datasets[item.datasetIndex];
      const type = (dataset && dataset.type) || chart.config.type;
      if (type === "line") {
        item.pointStyle = "line";
        item.lineWidth = Math.max(2, item.lineWidth || 0);
        item.lineDash = (dataset && dataset.borderDash) || [];
      } else {
        item.pointStyle = "rect";
      }
    }
    return items;
  };

  // --- Smoothing: TensorBoard's exponential moving average, debiased so the start is not pulled to 0 --
  function smooth(points, weight) {
    if (!weight) return points;
    let last = 0;
    let count = 0;
    return points.map((point) => {
      if (!point || typeof point.y !== "number" || !Number.isFinite(point.y)) return point;
      last = last * weight + (1 - weight) * point.y;
      count += 1;
      const debias = 1 - Math.pow(weight, count);
      return { x: point.x, y: last / debias };
    });
  }

  function rawOf(dataset) {
    // A script that assigns new data replaces the array: what is not our smoothed copy is raw.
    if (dataset.data !== dataset._llSmoothed) dataset._llRaw = dataset.data;
    return dataset._llRaw || dataset.data;
  }

  // --- Export ---------------------------------------------------------------------------------------
  function fileName(chart, ext) {
    const base = (chart.canvas.id || "chart").replace(/[^A-Za-z0-9_-]+/g, "-");
    const run = document.getElementById("run-live");
    let prefix = "";
    try {
      prefix = run ? `run${JSON.parse(run.textContent).run}-` : "";
    } catch (error) {
      prefix = "";
    }
    return `${prefix}${base}.${ext}`;
  }

  function download(blob, name) {
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = name;
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function exportPNG(chart) {
    // On white: the canvas itself is transparent, which reads badly in most viewers.
    const canvas = document.createElement("canvas");
    canvas.width = chart.canvas.width;
    canvas.height = chart.canvas.height;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#ffffff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.drawImage(chart.canvas, 0, 0);
    canvas.toBlob((blob) => blob && download(blob, fileName(chart, "png")), "image/png");
  }

  function csvCell(value) {
    const text = value === null || value === undefined ? "" : String(value);
    return /[",\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
  }

  function seriesCSV(chart) {
    // The raw values (not the smoothed ones), one row per point: series, step, value.
    const xTitle = (chart.options.scales.x && chart.options.scales.x.title && chart.options.scales.x.title.text) || "x";
    const rows = [["series", xTitle, "value"]];
    for (const dataset of chart.data.datasets) {
      for (const point of rawOf(dataset)) {
        if (point && typeof point === "object") rows.push([dataset.label, point.x, point.y]);
      }
    }
    return rows.map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
  }

  function exportCSV(chart) {
    download(new Blob([seriesCSV(chart)], { type: "text/csv" }), fileName(chart, "csv"));
  }

  // --- Zoom: drag across the plot to show that x range; Reset (or a double click) shows everything ---
  function setXRange(chart, min, max) {
    const x = chart.options.scales.x;
    if (min === null) {
      x.min = undefined; // undefined, not deleted: Chart.js's option proxies write through assignments
      x.max = undefined;
    } else {
      x.min = min;
      x.max = max;
    }
    chart.update("none");
    chart._llTools.reset.hidden = min === null;
  }

  function attachZoom(chart, holder) {
    const canvas = chart.canvas;
    const box = document.createElement("div");
    box.className = "zoom-box";
    box.hidden = true;
    holder.append(box);
    let start = null;
    const localX = (event) => event.clientX - canvas.getBoundingClientRect().left;
    canvas.addEventListener("pointerdown", (event) => {
      const area = chart.chartArea;
      const x = localX(event);
      if (event.button !== 0 || !area || x < area.left || x > area.right) return;
      start = x;
    });
    canvas.addEventListener("pointermove", (event) => {
      if (start === null) return;
      const area = chart.chartArea;
      const x = Math.min(Math.max(localX(event), area.left), area.right);
      box.hidden = Math.abs(x - start) < 3;
      box.style.left = `${canvas.offsetLeft + Math.min(x, start)}px`;
      box.style.width = `${Math.abs(x - start)}px`;
      box.style.top = `${canvas.offsetTop + area.top}px`;
      box.style.height = `${area.bottom - area.top}px`;
    });
    const finish = (event) => {
      if (start === null) return;
      const area = chart.chartArea;
      const end = Math.min(Math.max(localX(event), area.left), area.right);
      const from = start;
      start = null;
      box.hidden = true;
      if (Math.abs(end - from) < 5) return; // a click, not a drag
      const scale = chart.scales.x;
      const a = scale.getValueForPixel(Math.min(from, end));
      const b = scale.getValueForPixel(Math.max(from, end));
      if (Number.isFinite(a) && Number.isFinite(b) && b > a) setXRange(chart, a, b);
    };
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointerleave", (event) => start !== null && finish(event));
    canvas.addEventListener("dblclick", () => setXRange(chart, null, null));
  }

  // --- Log scale -------------------------------------------------------------------------------------
  function setLog(chart, on) {
    const y = chart.options.scales.y;
    if (on) {
      chart._llTools.linearY = { type: y.type, suggestedMin: y.suggestedMin, suggestedMax: y.suggestedMax, min: y.min };
      y.type = "logarithmic";
      y.suggestedMin = undefined; // 0 has no logarithm
      y.min = undefined;
    } else if (chart._llTools.linearY) {
      Object.assign(y, chart._llTools.linearY, { type: chart._llTools.linearY.type || "linear" });
    }
    chart.update("none");
  }

  // --- The toolbar -----------------------------------------------------------------------------------
  function button(text, title, onClick) {
    const element = document.createElement("button");
    element.type = "button";
    element.textContent = text;
    element.title = title;
    element.addEventListener("click", onClick);
    return element;
  }

  let counter = 0;

  function toolbar(chart) {
    const canvas = chart.canvas;
    const holder = canvas.parentElement;
    if (!holder || holder.querySelector(":scope > .chart-tools")) return;
    counter += 1;
    const id = `${canvas.id || "chart"}-tools-${counter}`;
    const bar = document.createElement("div");
    bar.className = "chart-tools";
    bar.setAttribute("role", "group");
    bar.setAttribute("aria-label", `${canvas.getAttribute("aria-label") || "chart"}: tools`);

    const reset = button("Reset zoom", "show every step (or double-click the chart)", () => setXRange(chart, null, null));
    reset.hidden = true;
    chart._llTools.reset = reset;

    const logLabel = document.createElement("label");
    const log = document.createElement("input");
    log.type = "checkbox";
    log.id = `${id}-log`;
    log.setAttribute("aria-label", "log scale");
    log.addEventListener("change", () => setLog(chart, log.checked));
    logLabel.htmlFor = log.id;
    logLabel.append(log, "log");

    const smoothLabel = document.createElement("label");
    const slider = document.createElement("input");
    slider.type = "range";
    slider.min = "0";
    slider.max = "0.99";
    slider.step = "0.01";
    slider.value = "0";
    slider.id = `${id}-smooth`;
    slider.setAttribute("aria-label", "smoothing (exponential moving average weight)");
    const shown = document.createElement("output");
    shown.htmlFor = slider.id;
    shown.textContent = "0";
    slider.addEventListener("input", () => {
      chart._llTools.smoothing = Number(slider.value);
      shown.textContent = slider.value;
      chart.update("none");
    });
    smoothLabel.htmlFor = slider.id;
    smoothLabel.append("smooth", slider, shown);

    canvas.title = "drag across the chart to zoom; double-click to show everything";

    bar.append(
      reset,
      logLabel,
      smoothLabel,
      button("PNG", "download the chart as an image", () => exportPNG(chart)),
      button("CSV", "download the series (raw values) as CSV", () => exportCSV(chart))
    );
    holder.classList.add("has-chart-tools");
    if (getComputedStyle(holder).position === "static") holder.style.position = "relative";
    holder.prepend(bar);
    attachZoom(chart, holder);
  }

  function wanted(chart) {
    const own = chart.config.options && chart.config.options.plugins && chart.config.options.plugins.llTools;
    return chart.config.type === "line" && !(own && own.disabled);
  }

  Chart.register({
    id: "llTools",
    afterInit(chart) {
      if (!wanted(chart)) return;
      chart._llTools = { smoothing: 0 };
      toolbar(chart);
    },
    beforeUpdate(chart) {
      if (!chart._llTools) return;
      const weight = chart._llTools.smoothing;
      for (const dataset of chart.data.datasets) {
        const raw = rawOf(dataset);
        if (!Array.isArray(raw)) continue;
        dataset._llSmoothed = weight ? smooth(raw, weight) : raw;
        dataset.data = dataset._llSmoothed;
      }
    },
  });

  return { smooth: smooth, seriesCSV: seriesCSV };
})();
