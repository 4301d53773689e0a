// The new-run page: the shape table is checked by the server as you type (debounced), and each field the
// server would refuse (numbers, overrides) shows the engine's message next to it before the form is sent.
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
  const LIVE_FIELDS = ["epochs", "lr", "batch_size", "overrides"];

  function liveError(name) {
    // One message element after each checked field, made once (no markup in the template to keep in step).
    const id = `id_${name}_live`;
    let note = document.getElementById(id);
    if (!note) {
      const field = form.elements[name];
      note = document.createElement("span");
      note.id = id;
      note.className = "field-live-error";
      note.setAttribute("aria-live", "polite");
      field.insertAdjacentElement("afterend", note);
      const described = field.getAttribute("aria-describedby");
      field.setAttribute("aria-describedby", described ? `${described} ${id}` : id);
    }
    return note;
  }

  function showFieldErrors(fields) {
    for (const name of LIVE_FIELDS) {
      const message = fields[name] || "";
      const note = liveError(name);
      note.textContent = message;
      note.hidden = !message;
      if (message) form.elements[name].setAttribute("aria-invalid", "true");
      else form.elements[name].removeAttribute("aria-invalid");
    }
  }

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
    for (const name of LIVE_FIELDS) body[name] = form.elements[name].value;
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
    showFieldErrors(result.fields || {});
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
