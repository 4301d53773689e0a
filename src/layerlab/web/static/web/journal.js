// The journal entry form: a live preview of the markdown, rendered and sanitized by the server (debounced).
(function () {
  "use strict";
  const form = document.getElementById("entry-form");
  const preview = document.getElementById("entry-preview");
  if (!form || !preview) return;
  const csrf = form.querySelector("[name=csrfmiddlewaretoken]").value;
  const body = form.elements.body;
  let timer = null;
  let sequence = 0;

  async function render() {
    const mine = ++sequence;
    const data = new FormData();
    data.append("body", body.value);
    let html = null;
    try {
      const response = await fetch(form.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrf },
        body: data,
      });
      if (response.ok) html = (await response.json()).html;
    } catch (error) {
      html = null;
    }
    if (mine !== sequence || html === null) return;
    // The server's HTML is the journal's own rendering: markdown-it without raw HTML, then nh3.
    preview.innerHTML = html;
  }

  body.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(render, 400);
  });
})();
