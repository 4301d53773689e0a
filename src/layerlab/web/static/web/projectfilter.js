// Pickers that follow a project picker: <select data-project-filter="id_project"> shows only the options
// whose data-project is the chosen project (options without data-project, e.g. built-ins, always show).
(function () {
  "use strict";
  for (const select of document.querySelectorAll("select[data-project-filter]")) {
    const project = document.getElementById(select.dataset.projectFilter);
    if (!project) continue;

    const apply = () => {
      const chosen = project.value;
      for (const option of select.options) {
        const owner = option.dataset.project;
        const fits = !owner || !chosen || owner === chosen;
        option.hidden = !fits;
        option.disabled = !fits;
      }
      const current = select.options[select.selectedIndex];
      if (current && current.disabled) {
        const first = Array.from(select.options).find((option) => !option.disabled);
        if (first) {
          select.value = first.value;
          select.dispatchEvent(new Event("change", { bubbles: true }));
        }
      }
    };
    project.addEventListener("change", apply);
    apply();
  }
})();
