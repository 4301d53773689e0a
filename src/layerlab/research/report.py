"""An experiment's written report: report.json (everything, machine-readable), report.md and the PNG plots.

``report_document(spec, report, results, trials, seconds)`` is the JSON document (the kind's table,
findings, plots, the paper's reference table, plus the exact trial configs, seeds, statuses and the
time taken); ``write_report(out_dir, document)`` writes it with ``report.md`` and ``plots/<name>.png``.
The lab stores the same document and images (apps/experiments).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from layerlab.core import runlayout
from layerlab.research.base import Plot, Report, Trial, TrialResult
from layerlab.research.plots import render_png
from layerlab.research.spec import ExperimentSpec


def _clean(value):
    """JSON-able, NaN and infinity as None (a report must load in a browser)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


def trial_record(trial: Trial, result: TrialResult | None) -> dict:
    """One trial in the report: key, labels, seed, status, seconds, its exact config, its run."""
    return {
        "key": trial.key,
        "labels": trial.labels,
        "seed": trial.seed,
        "probe": trial.probe,
        "needs": list(trial.needs),
        "status": result.status if result else "not run",
        "seconds": round(result.seconds, 3) if result else None,
        "run_id": result.run_id if result else None,
        "run_dir": str(result.run_dir) if result and result.run_dir else None,
        "error": (result.summary or {}).get("error") if result else None,
        "config": trial.config if trial.probe is None else {"probe": trial.probe, "args": trial.probe_args},
    }


def report_document(
    spec: ExperimentSpec,
    report: Report,
    results: Mapping[str, TrialResult],
    trials: Mapping[str, Trial],
    seconds: float,
) -> dict:
    """The whole report as one JSON-able mapping."""
    records = [trial_record(t, results.get(k)) for k, t in trials.items()]
    counts: dict[str, int] = {}
    for record in records:
        counts[record["status"]] = counts.get(record["status"], 0) + 1
    return _clean(
        {
            **report.to_dict(),
            "experiment": {"name": spec.name, "kind": spec.kind_name, "options": spec.options_dict()},
            "config": spec.config,
            "seeds": sorted({r["seed"] for r in records}),
            "counts": counts,
            "seconds": round(seconds, 3),
            "trial_seconds": round(sum(r["seconds"] or 0.0 for r in records), 3),
            "trials": records,
        }
    )


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(columns: list[str], rows: list[dict]) -> list[str]:
    """A GitHub-flavoured markdown table."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join(" --- " for _ in columns) + "|"]
    lines += ["| " + " | ".join(_cell(row.get(c)) for c in columns) + " |" for row in rows]
    return lines


def report_markdown(document: dict, plot_files: Mapping[str, str] | None = None) -> str:
    """report.md: title, findings, our table, the paper's table, plots, time, seeds, the configs."""
    exp = document["experiment"]
    lines = [f"# {document['title']}", "", f"Experiment `{exp['name']}`, kind `{exp['kind']}`.", ""]
    lines += ["## Findings", ""] + [f"- {f}" for f in document["findings"]] + [""]
    lines += ["## Results", ""] + markdown_table(document["columns"], document["rows"]) + [""]
    reference = document.get("reference")
    if reference:
        lines += [f"## Reference: {reference.get('source', 'the paper')}", ""]
        lines += markdown_table(reference.get("columns", []), reference.get("rows", [])) + [""]
    for name, file in (plot_files or {}).items():
        lines += [f"![{name}]({file})", ""]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(document["counts"].items()))
    lines += [
        "## Runs",
        "",
        f"{len(document['trials'])} trials ({counts}); {document['seconds']:.1f} s in all, "
        f"{document['trial_seconds']:.1f} s of trial time; seeds {document['seeds']}.",
        "",
    ]
    lines += markdown_table(
        ["key", "status", "seed", "seconds", "run"],
        [{**t, "run": t["run_id"] or t["run_dir"]} for t in document["trials"]],
    )
    lines += [
        "",
        "## Config",
        "",
        "```yaml",
        yaml.safe_dump(document["config"], sort_keys=False).rstrip(),
        "```",
    ]
    lines += ["", "Each trial's exact config is in report.json (`trials[].config`).", ""]
    return "\n".join(lines)


def plot_file_name(name: str) -> str:
    """``<name>.png`` with anything but letters, digits, ``_.-`` written as ``_``."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".") + ".png"


def write_report(out_dir: str | Path, document: dict) -> dict[str, Path]:
    """Write report.json, report.md and plots/<name>.png into ``out_dir``; the paths written."""
    out_dir = Path(out_dir)
    written: dict[str, Path] = {}
    plot_files: dict[str, str] = {}
    for data in document.get("plots", []):
        plot = Plot(**data)
        relative = f"{runlayout.PLOTS_DIR}/{plot_file_name(plot.name)}"
        written[plot.name] = render_png(plot, out_dir / relative)
        plot_files[plot.name] = relative
    for name, text in (
        (runlayout.REPORT_JSON, json.dumps(document, indent=2, allow_nan=False)),
        (runlayout.REPORT_MD, report_markdown(document, plot_files)),
    ):
        path = out_dir / name
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(path)
        written[name] = path
    return written
