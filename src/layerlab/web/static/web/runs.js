// The runs table: rows of queued or running runs show live status and progress (polling the runs API).
(function () {
  "use strict";
  const cells = Array.from(document.querySelectorAll("[data-live-run]"));
  if (!cells.length) return;
  const FINISHED = ["succeeded", "failed", "cancelled"];

  function showProgress(cell, run) {
    const { epoch, epochs } = run.progress;
    let bar = cell.querySelector("progress");
    const known = run.status === "running" && epochs > 0;  // a logged run has no epoch count
    if (known) {
      // A queued run that started gets its bar; a running one's bar moves.
      if (!bar) {
        bar = document.createElement("progress");
        cell.querySelector(".badge").after(" ", bar);
      }
      bar.max = epochs || 1;
      bar.value = epoch;
      bar.setAttribute("aria-label", `epoch ${epoch} of ${epochs}`);
    } else if (bar) {
      bar.remove();
    }
    cell.querySelector(".progress-text").textContent = known ? `${epoch}/${epochs}` : "";
  }

  async function poll() {
    let pending = 0;
    await Promise.all(cells.map(async (cell) => {
      if (cell.dataset.done) return;
      try {
        const response = await fetch(`/api/runs/${cell.dataset.liveRun}/`, { credentials: "same-origin" });
        if (!response.ok) return;
        const run = await response.json();
        const badge = cell.querySelector(".badge");
        badge.textContent = run.status;
        badge.className = `badge s-${run.status}`;
        showProgress(cell, run);
        if (FINISHED.includes(run.status)) cell.dataset.done = "1";
        else pending += 1;
      } catch (error) { pending += 1; }
    }));
    if (pending) window.setTimeout(poll, 2000);
  }
  window.setTimeout(poll, 1000);
})();
