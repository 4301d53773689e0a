// The run page's "What it learned" tab: pick an input (a test example or an upload), a layer and a
// channel; the runs API computes the inspection once (then keeps it) and this script shows its images.
(function () {
  "use strict";
  const root = document.getElementById("learned");
  if (!root) return;
  const api = root.dataset.api;
  const $ = (id) => document.getElementById(id);
  const status = $("learned-status");
  const layerPick = $("pick-layer");
  const channelPick = $("pick-channel");
  const PAGE = 24;
  let offset = 0;
  let total = 0;
  let input = null; // {example: N} or {file: File}
  let busy = 0; // the newest request; older answers are dropped
  let layers = []; // the network's layers, from the last index

  function say(text, isError) {
    status.textContent = text;
    status.classList.toggle("error", Boolean(isError));
  }

  async function answer(response) {
    let data = null;
    try {
      data = await response.json();
    } catch (error) {
      throw new Error(`HTTP ${response.status}`);
    }
    if (!response.ok) throw new Error([data.detail, data.hint].filter(Boolean).join(" — ") || `HTTP ${response.status}`);
    return data;
  }

  async function loadExamples() {
    const box = $("examples");
    $("examples-note").textContent = "Loading…";
    let data;
    try {
      data = await answer(await fetch(`${api}examples/?offset=${offset}`, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      }));
    } catch (error) {
      $("examples-note").textContent = `Cannot list the test examples: ${error.message}`;
      return;
    }
    total = data.total;
    box.replaceChildren();
    for (const item of data.items) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "example";
      button.dataset.position = item.position;
      button.setAttribute("aria-label", `test example ${item.position}, class ${item.label}`);
      if (item.image) {
        const img = document.createElement("img");
        img.src = item.image; // a data: URL made by the server
        img.alt = "";
        button.append(img);
      }
      const caption = document.createElement("span");
      caption.textContent = `#${item.position} · ${item.label}`;
      button.append(caption);
      button.addEventListener("click", () => choose({ example: item.position }));
      box.append(button);
    }
    const last = Math.min(offset + data.items.length, total);
    $("examples-note").textContent = total ? `test examples ${offset}–${last - 1} of ${total}` : "the test split is empty";
    $("examples-prev").disabled = offset === 0;
    $("examples-next").disabled = last >= total;
  }

  function choose(chosen) {
    input = chosen;
    inspect();
  }

  function options() {
    const params = new URLSearchParams();
    if (layerPick.value) params.set("layer", layerPick.value);
    if (channelPick.value !== "") params.set("channel", channelPick.value);
    return params;
  }

  async function inspect() {
    if (!input) {
      say("Choose an input first.", true);
      return;
    }
    const mine = ++busy;
    say("Computing (the first time for this input takes a few seconds)…");
    const started = performance.now();
    let index;
    try {
      let response;
      if (input.example !== undefined) {
        const params = options();
        params.set("example", input.example);
        response = await fetch(`${api}?${params}`, { credentials: "same-origin", headers: { Accept: "application/json" } });
      } else {
        const body = new FormData();
        body.append("file", input.file);
        for (const [key, value] of options()) body.append(key, value);
        const token = document.querySelector("#upload-form [name=csrfmiddlewaretoken]").value;
        response = await fetch(api, {
          method: "POST", body, credentials: "same-origin",
          headers: { Accept: "application/json", "X-CSRFToken": token },
        });
      }
      index = await answer(response);
    } catch (error) {
      if (mine === busy) say(`Cannot inspect this input: ${error.message}`, true);
      return;
    }
    if (mine !== busy) return;
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    say(`${index.input.name}: ${index.cached ? "kept from before" : "computed"} in ${seconds} s (checkpoint ${index.checkpoint}, epoch ${index.epoch}).`);
    show(index);
  }

  function url(index, name) {
    return name ? index.files[name] || "" : "";
  }

  function picture(index, id, name, alt) {
    const img = $(id);
    const src = url(index, name);
    img.closest("figure").hidden = !src;
    if (src) {
      img.src = src;
      if (alt) img.alt = alt;
    }
  }

  function figure(src, alt, caption) {
    const fig = document.createElement("figure");
    const img = document.createElement("img");
    img.src = src;
    img.alt = alt;
    img.className = "pixelated";
    img.loading = "lazy";
    const text = document.createElement("figcaption");
    text.textContent = caption;
    fig.append(img, text);
    return fig;
  }

  function fillLayers(index) {
    const keep = layerPick.value;
    layerPick.replaceChildren(new Option("default (last conv layer)", ""));
    for (const layer of index.layers) {
      const option = new Option(`${layer.name} (${layer.kind}, ${layer.channels} channels)`, layer.name);
      layerPick.append(option);
    }
    layerPick.value = keep;
    layers = index.layers;
    channelLimit(index.layer);
  }

  function channelLimit(name) {
    const layer = layers.find((item) => item.name === name);
    if (layer) channelPick.max = layer.channels - 1;
    else channelPick.removeAttribute("max");
  }

  function show(index) {
    $("learned-result").hidden = false;
    fillLayers(index);
    picture(index, "input-image", index.input.image, `the input: ${index.input.name}`);
    $("input-name").textContent = index.input.name;
    const list = $("prediction");
    list.replaceChildren();
    for (const top of (index.input.prediction || {}).top || []) {
      const item = document.createElement("li");
      item.textContent = `${top.class}: ${(100 * top.probability).toFixed(1)}%`;
      list.append(item);
    }
    const grids = $("activations");
    grids.replaceChildren();
    for (const layer of index.layers) {
      if (!layer.image) continue;
      const dead = layer.stats ? ` · ${layer.stats.dead} dead of ${layer.channels}` : "";
      const caption = `${layer.name} (${layer.kind}) ${layer.shape.join("×")}${dead}`;
      const fig = figure(url(index, layer.image), `activations of ${layer.name}`, caption);
      if (layer.name === index.layer) fig.classList.add("chosen");
      fig.dataset.layer = layer.name;
      grids.append(fig);
    }
    showMeans(index);
    const filters = index.filters;
    picture(index, "filters-image", filters && filters.image);
    $("filters-note").textContent = filters ? `${filters.count} filters of ${filters.layer} (${filters.kernel || "?"}×${filters.kernel || "?"})` : "";
    const topk = index.topk;
    picture(index, "topk-image", topk && topk.image);
    picture(index, "topk-crops", topk && topk.crops);
    $("topk-note").textContent = topk && topk.examples
      ? `${topk.layer}, channel ${topk.channel}: ${topk.examples.map((e) => `#${e.index} (${e.label})`).join(", ")}`
      : (topk && topk.error) || "";
    const max = index.maximize || {};
    for (const kind of ["channel", "class"]) {
      const found = max[kind];
      picture(index, `maximize-${kind}`, found && found.image);
      $(`maximize-${kind}-note`).textContent = found
        ? (kind === "channel" ? `${found.layer}, channel ${found.channel}` : `class ${found.class}`) +
          `: ${found.start.toFixed(2)} → ${found.final.toFixed(2)} in ${found.steps} steps`
        : "";
    }
    showAttributions(index);
  }

  function showMeans(index) {
    const layer = index.layers.find((item) => item.name === index.layer);
    const stats = layer && layer.stats;
    const box = $("channel-means");
    if (!stats) {
      box.textContent = "";
      return;
    }
    const means = stats.mean.map((value, channel) => `${channel}: ${value.toFixed(2)}`).join(", ");
    const dead = stats.dead ? ` Dead (never active): ${stats.dead_channels.join(", ")}.` : " No dead channel.";
    box.textContent = `${layer.name}, mean activation of each channel over ${stats.n} test examples: ${means}.${dead}`;
  }

  function showAttributions(index) {
    const box = $("attributions");
    box.replaceChildren();
    const attributions = index.attributions;
    if (!attributions || attributions.error) {
      box.textContent = attributions ? attributions.error : "Not computed.";
      return;
    }
    $("attr-threshold").textContent = attributions.threshold;
    const names = { saliency: "Saliency", integrated_gradients: "Integrated gradients", grad_cam: "Grad-CAM", occlusion: "Occlusion" };
    for (const item of attributions.methods) {
      const name = names[item.method] || item.method;
      if (item.skipped) {
        const note = document.createElement("p");
        note.className = "muted";
        note.textContent = `${name}: ${item.skipped}`;
        box.append(note);
        continue;
      }
      const flag = item.flagged ? " — flagged: barely changes with random weights" : "";
      const layer = item.method === "grad_cam" && attributions.layer ? ` on ${attributions.layer}` : "";
      const fig = figure(url(index, item.image), `${name}${layer} for class index ${attributions.target}`,
        `${name}${layer} · sanity ${item.sanity.toFixed(2)}${flag}`);
      fig.dataset.method = item.method;
      if (item.flagged) fig.classList.add("flagged");
      box.append(fig);
    }
  }

  $("examples-prev").addEventListener("click", () => {
    offset = Math.max(0, offset - PAGE);
    loadExamples();
  });
  $("examples-next").addEventListener("click", () => {
    offset += PAGE;
    loadExamples();
  });
  $("upload-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) {
      say("Choose an image file first.", true);
      return;
    }
    choose({ file });
  });
  $("pick-apply").addEventListener("click", inspect);
  layerPick.addEventListener("change", () => {
    channelPick.value = "";
    const convs = layers.filter((item) => item.conv && item.spatial); // the default: the last one
    channelLimit(layerPick.value || (convs[convs.length - 1] || {}).name);
  });
  loadExamples();
})();
