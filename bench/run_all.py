"""Run every benchmark and write the figures table to BENCHMARKS.md.

Each ``bench/bench_*.py`` module exposes ``run() -> list[dict]``; every dict has ``name``,
``value``, ``unit``, ``reference`` (what it is compared with, measured in the same run),
``ratio`` (or None), ``target`` (text) and ``ok`` (True, False or None when there is no target).
Usage: ``python -m bench.run_all [module ...]`` (default: every module).
"""

from __future__ import annotations

import datetime as dt
import importlib
import pkgutil
import platform
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def discover() -> list[str]:
    """Names of the benchmark modules beside this file."""
    return sorted(
        m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.startswith("bench_")
    )


def run_module(name: str) -> list[dict]:
    """Run one module, turning a crash into one failed row (the others still run)."""
    try:
        module = importlib.import_module(f"bench.{name}")
        return list(module.run())
    except Exception as exc:  # a benchmark failure is a finding to report, not a reason to stop
        traceback.print_exc()
        return [
            {
                "name": f"{name} crashed",
                "value": None,
                "unit": "",
                "reference": "",
                "ratio": None,
                "target": "",
                "ok": False,
                "note": f"{type(exc).__name__}: {exc}",
            }
        ]


def fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def render(results: dict[str, list[dict]]) -> str:
    """The BENCHMARKS.md text."""
    import torch

    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; "
        f"Python {platform.python_version()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.machine()}. Every ratio is against a reference measured in the same run.",
        "",
    ]
    for module, rows in results.items():
        lines += [f"## {module.removeprefix('bench_')}", ""]
        lines += [
            "| measure | value | unit | reference | ratio | target | met |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            met = {True: "yes", False: "**no**", None: "-"}[r.get("ok")]
            lines.append(
                f"| {r['name']} | {fmt(r.get('value'))} | {r.get('unit', '')} | {r.get('reference', '')} "
                f"| {fmt(r.get('ratio'))} | {r.get('target', '')} | {met} |"
            )
        notes = [f"- {r['name']}: {r['note']}" for r in rows if r.get("note")]
        lines += ["", *notes, ""] if notes else [""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    names = [n if n.startswith("bench_") else f"bench_{n}" for n in argv] or discover()
    results = {name: run_module(name) for name in names}
    out = ROOT / "BENCHMARKS.md"
    if out.exists():
        # Re-running some modules keeps the others' sections; a full run keeps the sections no module
        # writes (the research reproductions, run once by hand: see docs/experiments.md).
        previous = out.read_text(encoding="utf-8")
        kept = {s.split("\n", 1)[0]: s for s in previous.split("\n## ")[1:]}
        for name in names:
            kept.pop(name.removeprefix("bench_"), None)
        text = render(results)
        text += "".join(f"\n## {section}" for section in kept.values())
    else:
        text = render(results)
    out.write_text(text.rstrip() + "\n", encoding="utf-8")
    print(text)
    return 0 if all(r.get("ok") is not False for rows in results.values() for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
