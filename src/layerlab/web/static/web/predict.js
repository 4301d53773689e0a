// The predict page: a drop zone that fills the file input (and shows the image), and the probability chart.
(function () {
  "use strict";
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("id_image");
  const preview = document.getElementById("preview");
  function show(file) {
    if (!file) return;
    preview.src = URL.createObjectURL(file);
    preview.alt = `the chosen image, ${file.name}`;
    preview.hidden = false;
  }
  input.addEventListener("change", () => show(input.files[0]));
  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    if (!event.dataTransfer.files.length) return;
    input.files = event.dataTransfer.files;
    show(input.files[0]);
    document.getElementById("predict-form").requestSubmit();
  });
  const data = document.getElementById("probs-data");
  if (data) {
    const probs = JSON.parse(data.textContent);
    new Chart(document.getElementById("chart-probs"), {
      type: "bar",
      data: { labels: probs.labels, datasets: [{ label: "probability", data: probs.values, backgroundColor: "#1f5fbf" }] },
      options: { animation: false, responsive: true, maintainAspectRatio: false,
        scales: { y: { min: 0, max: 1 } }, plugins: { legend: { display: false } } },
    });
  }
})();
