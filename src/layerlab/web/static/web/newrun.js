// The new-run page: the shape table is checked by the server as you type (debounced).
(function () {
  "use strict";
  const form = document.getElementById("new-run");
  if (!form) return;
  const status = document.getElementById("shape-status");
  const table = document.getElementById("shape-table");
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const editButton = document.getElementById("edit-layers");
  let lastLayers = null;
  let timer = null;
  editButton.addEventListener("click", () => {
    // One layer a line: easy to read and to edit.
    form.elements.spec.value = "[\n" + lastLayers.map((layer) => "  " + JSON.stringify(layer)).join(",\n") + "\n]";
    editButton.hidden = true;
    form.elements.spec.focus();
    check();
  });
  let sequence = 0;

  function cell(row, text, numeric) {
    const td = row.insertCell();
    td.textContent = text;
    if (numeric) td.className = "num";
  }

  async function check() {
    const mine = ++sequence;
    const body = {
      dataset: form.elements.dataset.value,
      preset: form.elements.preset.value,
      spec: form.elements.spec.value,
    };
    let result;
    try {
      const response = await fetch("/runs/new/shapes/", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify(body),
      });
      result = await response.json();
    } catch (error) {
      result = { ok: false, error: `could not check: ${error.message}` };
    }
    if (mine !== sequence) return; // a newer check is on its way
    const tbody = table.tBodies[0];
    tbody.replaceChildren();
    if (!result.ok) {
      status.textContent = result.error;
      status.className = "shape-bad";
      table.hidden = true;
      editButton.hidden = true;
      return;
    }
    for (const layer of result.rows) {
      const row = tbody.insertRow();
      cell(row, layer.index);
      cell(row, "\u2003".repeat(layer.depth || 0) + layer.name);
      cell(row, layer.kind);
      cell(row, layer.output_shape.join("\u00d7"));
      cell(row, String(layer.params), true);
      cell(row, (layer.warnings || []).join("; "));
    }
    table.hidden = false;
    lastLayers = result.layers;
    editButton.hidden = !(result.layers && !form.elements.spec.value.trim());
    const warnings = result.warnings && result.warnings.length ? ` Warnings: ${result.warnings.join("; ")}` : "";
    status.textContent = `OK: input ${result.input_shape.join("\u00d7")} → output ${result.output_shape.join("\u00d7")}, ${result.total_params} parameters.${warnings}`;
    status.className = "shape-ok";
  }

  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(check, 300);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
  check();
})();
