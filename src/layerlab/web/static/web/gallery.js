// The run page's confusion matrix: a click (or Enter) on a cell shows the test examples of that
// true class predicted as that column's class (at most a few dozen, rendered by the server).
(function () {
  "use strict";
  const section = document.getElementById("confusion");
  const box = document.getElementById("gallery");
  if (!section || !box || !section.dataset.galleryUrl) return;
  const title = document.getElementById("gallery-title");
  const note = document.getElementById("gallery-note");
  const items = document.getElementById("gallery-items");
  const headers = Array.from(section.querySelectorAll("thead th")).slice(1).map((th) => th.textContent);
  const rows = Array.from(section.querySelectorAll("tbody th")).map((th) => th.textContent);
  let current = null;

  for (const cell of section.querySelectorAll("td[data-true]")) {
    const t = Number(cell.dataset.true);
    const p = Number(cell.dataset.predicted);
    cell.setAttribute("aria-label", `${cell.textContent.trim()} test examples of ${rows[t]} predicted as ${headers[p]}: show them`);
    cell.addEventListener("click", () => show(cell));
    cell.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        show(cell);
      }
    });
  }

  async function show(cell) {
    const t = cell.dataset.true;
    const p = cell.dataset.predicted;
    const key = `${t}:${p}`;
    current = key;
    section.querySelectorAll("td[aria-pressed]").forEach((other) => other.removeAttribute("aria-pressed"));
    cell.setAttribute("aria-pressed", "true");
    box.hidden = false;
    title.textContent = `${rows[t]} predicted as ${headers[p]}`;
    note.textContent = "Loading…";
    items.replaceChildren();
    let data;
    try {
      const response = await fetch(`${section.dataset.galleryUrl}?true=${t}&predicted=${p}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      data = await response.json();
      if (!response.ok) throw new Error(data.detail || `HTTP ${response.status}`);
    } catch (error) {
      if (current === key) note.textContent = `Cannot show these examples: ${error.message}`;
      return;
    }
    if (current !== key) return; // another cell was clicked meanwhile
    note.textContent = data.items.length < data.total
      ? `The first ${data.items.length} of ${data.total} test examples.`
      : `${data.total} test example${data.total === 1 ? "" : "s"}.`;
    for (const item of data.items) {
      const figure = document.createElement("figure");
      if (item.image) {
        const img = document.createElement("img");
        img.src = item.image; // a data: URL made by the server (the page's CSP allows data: images)
        img.alt = `test example ${item.position}: ${data.true}, predicted ${data.predicted}`;
        figure.append(img);
      } else if (item.values) {
        const code = document.createElement("code");
        code.textContent = `[${item.values.join(", ")}]`;
        figure.append(code);
      }
      const caption = document.createElement("figcaption");
      caption.textContent = item.name || `#${item.position}`;
      figure.append(caption);
      items.append(figure);
    }
  }
})();
