// The sweep page: the trials table (sorted, filtered, built in one fragment), the best-so-far curve,
// parallel coordinates of the parameters against the metric (a canvas of its own), importances.
(function () {
  "use strict";
  const meta = JSON.parse(document.getElementById("sweep-meta").textContent);
  const maximize = meta.goal === "maximize";
  const getJSON = (url) =>
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then((r) => {
      if (!r.ok) throw new Error(`${url}: ${r.status}`);
      return r.json();
    });

  let columns = [];
  let rows = [];
  let sortBy = 0;
  let sortDesc = false;

  function cellText(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toPrecision(4);
    return String(value);
  }

  function renderHead() {
    const head = document.getElementById("trials-head");
    head.textContent = "";
    columns.forEach((name, i) => {
      const th = document.createElement("th");
      th.scope = "col";
      const button = document.createElement("button");
      button.type = "button";
      button.className = "link";
      button.textContent = name + (i === sortBy ? (sortDesc ? " ▼" : " ▲") : "");
      button.addEventListener("click", () => {
        sortDesc = sortBy === i ? !sortDesc : false;
        sortBy = i;
        renderHead();
        renderBody();
      });
      th.setAttribute("aria-sort", i === sortBy ? (sortDesc ? "descending" : "ascending") : "none");
      th.appendChild(button);
      head.appendChild(th);
    });
  }

  function compare(a, b) {
    const x = a[sortBy];
    const y = b[sortBy];
    if (x === y) return a[0] - b[0];
    if (x === null || x === undefined) return 1; // empty cells last, either way
    if (y === null || y === undefined) return -1;
    const order = x < y ? -1 : 1;
    return sortDesc ? -order : order;
  }

  function renderBody() {
    const state = document.getElementById("trial-state").value;
    const text = document.getElementById("trial-text").value.trim().toLowerCase();
    const shown = rows.filter(
      (row) =>
        (!state || row[1] === state) &&
        (!text || row.some((v) => v !== null && String(v).toLowerCase().includes(text)))
    );
    shown.sort(compare);
    const fragment = document.createDocumentFragment();
    for (const row of shown) {
      const tr = document.createElement("tr");
      for (let i = 0; i < row.length; i++) {
        const td = document.createElement("td");
        if (i === 4 && row[4] !== null) {
          const a = document.createElement("a");
          a.href = `/runs/${row[4]}/`;
          a.textContent = `run ${row[4]}`;
          td.appendChild(a);
        } else {
          td.textContent = cellText(row[i]);
        }
        tr.appendChild(td);
      }
      fragment.appendChild(tr);
    }
    const body = document.getElementById("trials-body");
    body.textContent = "";
    body.appendChild(fragment);
    document.getElementById("trial-count").textContent = `${shown.length} of ${rows.length} trials`;
  }

  function bestSoFar() {
    const canvas = document.getElementById("sweep-best");
    if (typeof Chart === "undefined" || !canvas) return;
    const told = rows.filter((r) => r[1] === "complete" && r[2] !== null).sort((a, b) => a[0] - b[0]);
    let best = null;
    const curve = told.map((r) => {
      best = best === null ? r[2] : maximize ? Math.max(best, r[2]) : Math.min(best, r[2]);
      return { x: r[0], y: best };
    });
    new Chart(canvas, {
      type: "line",
      data: {
        datasets: [
          { label: `best ${meta.metric}`, data: curve, stepped: true, borderColor: "#1f6feb", pointRadius: 0 },
          {
            label: meta.metric,
            data: told.map((r) => ({ x: r[0], y: r[2] })),
            showLine: false,
            borderColor: "#999",
            backgroundColor: "#999",
            pointRadius: 2,
          },
        ],
      },
      options: { animation: false, parsing: false, scales: { x: { type: "linear", title: { display: true, text: "trial" } } } },
    });
  }

  function parallel(params) {
    const canvas = document.getElementById("sweep-parallel");
    const ctx = canvas.getContext("2d");
    const told = rows.filter((r) => r[2] !== null);
    const axes = [...params.map((p, i) => ({ name: p, col: 6 + i })), { name: meta.metric, col: 2 }];
    const pad = 40;
    const width = canvas.width - 2 * pad;
    const height = canvas.height - 2 * pad;
    const scales = axes.map((axis) => {
      const values = told.map((r) => r[axis.col]);
      if (values.every((v) => typeof v === "number")) {
        const lo = Math.min(...values);
        const hi = Math.max(...values);
        return { at: (v) => (hi === lo ? 0.5 : (v - lo) / (hi - lo)), lo, hi };
      }
      const kinds = [...new Set(values.map(String))];
      return { at: (v) => (kinds.length < 2 ? 0.5 : kinds.indexOf(String(v)) / (kinds.length - 1)), kinds };
    });
    const x = (i) => pad + (axes.length < 2 ? width / 2 : (i * width) / (axes.length - 1));
    const y = (f) => pad + height - f * height;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    const metric = scales[axes.length - 1];
    ctx.globalAlpha = told.length > 2000 ? 0.15 : 0.5;
    for (const row of told) {
      const f = metric.at(row[2]);
      const good = maximize ? f : 1 - f;
      ctx.strokeStyle = `hsl(${Math.round(good * 220)}, 70%, 45%)`;
      ctx.beginPath();
      axes.forEach((axis, i) => {
        const py = y(scales[i].at(row[axis.col]));
        if (i === 0) ctx.moveTo(x(i), py);
        else ctx.lineTo(x(i), py);
      });
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    ctx.strokeStyle = "#333";
    ctx.fillStyle = "#333";
    ctx.font = "12px sans-serif";
    ctx.textAlign = "center";
    axes.forEach((axis, i) => {
      ctx.beginPath();
      ctx.moveTo(x(i), pad);
      ctx.lineTo(x(i), pad + height);
      ctx.stroke();
      ctx.fillText(axis.name, x(i), pad - 10);
      const s = scales[i];
      if (s.lo !== undefined && told.length) {
        ctx.fillText(cellText(s.hi), x(i), pad + height + 14);
        ctx.fillText(cellText(s.lo), x(i), pad + height + 28);
      }
    });
    canvas.dataset.lines = String(told.length);
  }

  function importances() {
    const list = document.getElementById("sweep-importances");
    getJSON(`/api/sweeps/${meta.id}/importances/`)
      .then((values) => {
        list.textContent = "";
        const names = Object.keys(values);
        if (!names.length) {
          const li = document.createElement("li");
          li.textContent = "not yet: importances need two complete trials with different values";
          list.appendChild(li);
        }
        for (const name of names) {
          const li = document.createElement("li");
          li.textContent = `${name}: ${(values[name] * 100).toFixed(1)}%`;
          list.appendChild(li);
        }
      })
      .catch(() => {
        list.textContent = "importances are not available";
      });
  }

  getJSON(`/api/sweeps/${meta.id}/trials/`).then((data) => {
    columns = data.columns;
    rows = data.rows;
    const started = performance.now();
    renderHead();
    renderBody();
    document.getElementById("trials").dataset.renderMs = String(Math.round(performance.now() - started));
    bestSoFar();
    parallel(data.params);
    importances();
    document.getElementById("trials").dataset.ready = "1";
  });
  document.getElementById("trial-state").addEventListener("change", renderBody);
  document.getElementById("trial-text").addEventListener("input", renderBody);
  document.getElementById("trial-filter").addEventListener("submit", (event) => event.preventDefault());
})();
