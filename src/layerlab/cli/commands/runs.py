"""``layerlab runs ls|show|compare``: read recorded runs from the local store or a server (``--remote``)."""

from __future__ import annotations

import argparse
import json
import os

from layerlab.core.configtree import flatten
from layerlab.core.errors import LayerlabError

SUMMARY_KEYS = ("train_accuracy", "val_accuracy", "test_accuracy", "test_loss", "seconds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--remote", metavar="URL", help="read from this server (token from LAYERLAB_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    # The same options after the action (`runs ls --remote URL`); SUPPRESS keeps a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--remote", metavar="URL", default=argparse.SUPPRESS, help="read from this server")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print JSON")
    sub = parser.add_subparsers(dest="runs_command", metavar="ACTION", required=True)
    ls = sub.add_parser("ls", help="list runs", parents=[common])
    ls.add_argument("--status", help="only runs with this status")
    ls.add_argument("--project", type=int, help="only runs of this project id")
    ls.add_argument(
        "--tag", action="append", default=None, help="only runs with this tag (repeat: every one)"
    )
    ls.add_argument(
        "--filter",
        metavar="EXPR",
        help="e.g. 'metric.test_accuracy>=0.9 and config.train.lr<0.01' (any summary metric or config key)",
    )
    ls.add_argument("--limit", type=int, default=50, help="at most this many, newest first (default 50)")
    show = sub.add_parser(
        "show", help="one run: config, progress, summary, last metric values", parents=[common]
    )
    show.add_argument("run_id", type=int)
    compare = sub.add_parser(
        "compare", help="runs side by side: summary figures and config differences", parents=[common]
    )
    compare.add_argument("run_ids", type=int, nargs="+")


class LocalStore:
    """Runs in this machine's database (every run: the local user owns the store)."""

    def __init__(self):
        from layerlab.server.bootstrap import require_migrated

        require_migrated()

    def runs(self, **filters) -> list[dict]:
        from layerlab.apps.runs import query as run_query
        from layerlab.apps.runs.api import RunSerializer
        from layerlab.apps.runs.models import Run

        query = Run.objects.all().prefetch_related("checkpoints", "tags")
        for tag in filters.get("tag") or ():
            query = query.filter(tags__name=tag)
        query = run_query.run_filter(query, run_query.parse_expression(filters.get("filter") or ""))
        if filters.get("status"):
            query = query.filter(status=filters["status"])
        if filters.get("project"):
            query = query.filter(project_id=filters["project"])
        return RunSerializer(query[: filters.get("limit", 50)], many=True).data

    def run(self, run_id: int) -> dict:
        from layerlab.apps.runs.api import RunSerializer
        from layerlab.apps.runs.models import Run

        run = Run.objects.filter(id=run_id).first()
        if run is None:
            raise LayerlabError(f"run {run_id} does not exist", hint="list runs with: layerlab runs ls")
        return RunSerializer(run).data

    def project_names(self) -> dict[int, str]:
        from layerlab.apps.projects.models import Project

        return dict(Project.objects.values_list("id", "name"))

    def last_metrics(self, run_id: int) -> dict:
        from layerlab.apps.runs.models import MetricPoint

        last = {}
        for name, step, value in (
            MetricPoint.objects.filter(run_id=run_id)
            .order_by("name", "step")
            .values_list("name", "step", "value")
        ):
            last[name] = (step, value)
        return last


class RemoteStore:
    """Runs on a server, through layerlab.client."""

    def __init__(self, url: str):
        from layerlab.client import LabClient

        if not os.environ.get("LAYERLAB_TOKEN"):
            raise LayerlabError(
                "LAYERLAB_TOKEN is not set", hint="export LAYERLAB_TOKEN=$(layerlab token NAME)"
            )
        self.client = LabClient(url)

    def runs(self, **filters) -> list[dict]:
        query = {k: v for k, v in filters.items() if v is not None and k != "limit"}
        page = self.client.request("GET", "runs/", query={**query, "limit": filters.get("limit", 50)})
        return page["results"]

    def run(self, run_id: int) -> dict:
        return self.client.run(run_id)

    def project_names(self) -> dict[int, str]:
        page = self.client.request("GET", "projects/", query={"limit": 1000})
        return {p["id"]: p["name"] for p in page["results"]}

    def last_metrics(self, run_id: int) -> dict:
        series = self.client.metrics(run_id)
        return {name: (s["steps"][-1], s["values"][-1]) for name, s in series.items() if s["steps"]}


def figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def percent(value) -> str:
    """An accuracy as everything else prints it (97.3%)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{100 * value:.1f}%"
    return "-"


def shown(key: str, value) -> str:
    """A summary figure: accuracies as percentages, the rest as numbers."""
    return percent(value) if key.endswith("accuracy") else figure(value)


def table(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def run(args: argparse.Namespace) -> int:
    store = RemoteStore(args.remote) if args.remote else LocalStore()
    if args.runs_command == "ls":
        runs = store.runs(
            status=args.status,
            project=args.project,
            limit=args.limit,
            tag=getattr(args, "tag", None),
            filter=getattr(args, "filter", None),
        )
        if args.json:
            print(json.dumps(runs))
            return 0
        projects = store.project_names() if runs else {}
        rows = [["ID", "PROJECT", "NAME", "STATUS", "EPOCH", "TEST ACC", "CREATED", "TAGS"]]
        for r in runs:
            epochs = f"{r['progress']['epoch']}/{r['progress']['epochs']}"
            acc = r["summary"].get("test_accuracy") if r["summary"] else None
            rows.append(
                [
                    str(r["id"]),
                    projects.get(r["project"], str(r["project"])),
                    r["name"] or "-",
                    r["status"],
                    epochs,
                    percent(acc),
                    r["created_at"][:19],
                    ",".join(r.get("tags") or []) or "-",
                ]
            )
        print(table(rows) if runs else "no runs")
        return 0
    if args.runs_command == "show":
        detail = store.run(args.run_id)
        detail["last_metrics"] = {
            k: {"step": s, "value": v} for k, (s, v) in store.last_metrics(args.run_id).items()
        }
        if args.json:
            print(json.dumps(detail))
            return 0
        print(f"run {detail['id']} {detail['name'] or ''} ({detail['status']}), {detail['progress']['text']}")
        for key in (
            "project",
            "parent",
            "created_at",
            "started_at",
            "finished_at",
            "attempts",
            "tags",
            "verdict",
            "error",
        ):
            value = detail.get(key)
            if isinstance(value, list):  # tags
                value = ", ".join(value)
            if value not in (None, ""):
                print(f"  {key}: {value}")
        for name, point in detail["last_metrics"].items():
            print(f"  {name} @ {point['step']}: {shown(name, point['value'])}")
        return 0
    runs = [store.run(run_id) for run_id in args.run_ids]
    configs = [flatten(r["config"]) for r in runs]
    keys = sorted({k for c in configs for k in c})
    differing = [k for k in keys if len({json.dumps(c.get(k)) for c in configs}) > 1]
    if args.json:
        print(json.dumps({"runs": [r["id"] for r in runs], "differences": {k: [c.get(k) for c in configs] for k in differing},
                          "summary": {k: [r["summary"].get(k) for r in runs] for k in SUMMARY_KEYS}}))  # fmt: skip
        return 0
    rows = [["", *[f"run {r['id']}" for r in runs]], ["status", *[r["status"] for r in runs]]]
    rows += [[k, *[shown(k, r["summary"].get(k)) for r in runs]] for k in SUMMARY_KEYS]
    rows += [[k, *[figure(c.get(k)) for c in configs]] for k in differing]
    print(table(rows))
    return 0
