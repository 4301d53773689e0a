"""``layerlab sweep CONFIG``: a hyper-parameter search (Optuna) whose trials are ordinary runs.

Locally the trials train in this process one after another, recorded in the lab's store (the dashboard's
sweep page shows them); with ``--remote URL`` the sweep is created on a lab server, its trials run on the
server's workers, and this command follows it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from layerlab.core.errors import LayerlabError

HELP = "search hyper-parameters with Optuna (a sweep: section); each trial is a run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="experiment config (YAML or JSON) with a sweep: section")
    parser.add_argument(
        "--sweep", dest="sweep_file", metavar="FILE", help="the sweep section in a file of its own"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key",
    )
    parser.add_argument("--name", default="", help="the sweep's name (default: the config file's)")
    parser.add_argument("--project", default=None, help="project name (or id) (default 'local')")
    parser.add_argument(
        "--user", help="owner of the recorded sweep (default $LAYERLAB_USER, else your login)"
    )
    parser.add_argument("--remote", metavar="URL", help="create the sweep on a lab server and follow it")
    parser.add_argument(
        "--json", action="store_true", help="print the result as JSON on the last stdout line"
    )


def read_inputs(args: argparse.Namespace) -> tuple[dict, dict | None]:
    from layerlab.core.mappingfile import read_mapping

    config = read_mapping(args.config, what="a mapping (seed, data, model, train, sweep)")
    sweep = read_mapping(args.sweep_file, what="the sweep section") if args.sweep_file else None
    if isinstance(sweep, dict) and "sweep" in sweep and len(sweep) == 1:
        sweep = sweep["sweep"]
    return config, sweep


def result_line(result: dict, args: argparse.Namespace) -> None:
    best = result.get("best")
    if args.json:
        print(json.dumps(result, default=str))
    elif best:
        print(
            f"best: trial {best['number']} {result['metric']} {best['value']:.4g} (run {best['run']}) "
            f"with {json.dumps(best['params'])}"
        )
    else:
        print("no trial completed")


def run(args: argparse.Namespace) -> int:
    from layerlab.cli.commands.train import stderr_logging

    stderr_logging()
    config, section = read_inputs(args)
    name = args.name or Path(args.config).stem
    if args.remote:
        return run_remote(args, config, section, name)
    return run_local(args, config, section, name)


def counts_text(counts: dict) -> str:
    return ", ".join(f"{counts.get(k, 0)} {k}" for k in ("complete", "pruned", "failed", "running"))


def run_local(args, config: dict, section: dict | None, name: str) -> int:
    from layerlab.cli.commands.train import record_owner, store_migrated

    store_migrated()
    from layerlab.apps.accounts.services import user_get_or_create_unclaimed
    from layerlab.apps.runs.execution import run_execute
    from layerlab.apps.runs.local import local_project
    from layerlab.apps.runs.models import Run
    from layerlab.apps.sweeps.api import SweepSerializer
    from layerlab.apps.sweeps.selectors import sweep_counts
    from layerlab.apps.sweeps.services import sweep_cancel, sweep_create, sweep_reconcile

    user = user_get_or_create_unclaimed(username=record_owner(args))
    project = local_project(user=user, ref=str(args.project or "local"))
    sweep = sweep_create(
        project=project, user=user, config=config, sweep=section, name=name, overrides=args.overrides
    )
    out = sys.stderr if args.json else sys.stdout
    print(f"sweep {sweep.id}: {sweep.trials} trials, {sweep.method}, {sweep.goal} {sweep.metric}", file=out)
    try:
        while True:
            queued = (
                Run.objects.filter(sweep_trial__sweep=sweep, status=Run.Status.QUEUED).order_by("id").first()
            )
            if queued is None:
                sweep_reconcile(sweep=sweep)
                sweep.refresh_from_db()
                if sweep.status != "running":
                    break
                queued = Run.objects.filter(sweep_trial__sweep=sweep, status=Run.Status.QUEUED).first()
                if queued is None:  # trials running elsewhere (a worker sharing this store)
                    time.sleep(1.0)
                    continue
            status = run_execute(run_id=queued.id)
            print(
                f"trial run {queued.id}: {status} ({counts_text(sweep_counts(sweep=sweep))})",
                file=out,
                flush=True,
            )
    except KeyboardInterrupt:
        sweep.refresh_from_db()
        if sweep.status == "running":
            sweep_cancel(sweep=sweep)
        print(f"sweep {sweep.id} cancelled", file=sys.stderr)
        raise
    sweep.refresh_from_db()
    result_line(dict(SweepSerializer(sweep).data), args)
    return 0


def run_remote(args, config: dict, section: dict | None, name: str) -> int:
    from layerlab.cli.commands.train import remote_project
    from layerlab.client import LabClient

    if not os.environ.get("LAYERLAB_TOKEN"):
        raise LayerlabError(
            "LAYERLAB_TOKEN is not set", hint="export LAYERLAB_TOKEN=$(layerlab token NAME) on the server"
        )
    client = LabClient(args.remote)
    project = remote_project(client, str(args.project or "local"))
    body = {"project": project, "config": config, "name": name, "overrides": list(args.overrides)}
    if section is not None:
        body["sweep"] = section
    sweep = client.request("POST", "sweeps/", body)
    out = sys.stderr if args.json else sys.stdout
    print(f"sweep {sweep['id']} on {client.url}: {sweep['trials']} trials", file=out, flush=True)
    last = None
    try:
        while sweep["status"] == "running":
            time.sleep(1.0)
            sweep = client.request("GET", f"sweeps/{sweep['id']}/")
            text = counts_text(sweep["counts"])
            if text != last:
                print(f"sweep {sweep['id']}: {text}", file=out, flush=True)
                last = text
    except KeyboardInterrupt:
        client.request("POST", f"sweeps/{sweep['id']}/cancel/")
        print(f"cancel requested for sweep {sweep['id']} on {client.url}", file=sys.stderr)
        raise
    result_line(sweep, args)
    if sweep["status"] != "finished":
        raise LayerlabError(f"sweep {sweep['id']} was {sweep['status']}", where="--remote")
    return 0
