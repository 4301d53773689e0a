"""``layerlab experiment run CONFIG``: a research experiment (an ``experiment:`` section) whose trials are runs.

Locally the trials train on this machine (in turn, or ``--parallel N`` at a time in separate
processes) into the experiment's directory, recorded in the lab's store (the dashboard's
Experiments page shows them); rerunning the same command resumes an interrupted experiment and
redoes no finished trial. With ``--remote URL`` the experiment is created on a lab server, its
trials run on the server's workers, and this command follows it. ``experiment resume ID [--remote URL]``
runs a cancelled or failed lab experiment on (completed trials kept). ``experiment kinds`` lists the kinds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

from layerlab.core.errors import ConfigError, LayerlabError

HELP = "run a research experiment (an experiment: section): seeds, intrinsic dimension, CoordConv ..."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    verbs = parser.add_subparsers(dest="verb", metavar="{run,resume,kinds}")
    run_parser = verbs.add_parser("run", help="run (or resume) an experiment")
    run_parser.add_argument("config", help="experiment config (YAML or JSON) with an experiment: section")
    run_parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override a key"
    )
    run_parser.add_argument("--name", default="", help="the experiment's name (default: the config's)")
    run_parser.add_argument(
        "--out",
        metavar="DIR",
        help="the experiment's directory (default $LAYERLAB_HOME/experiments/<name>-<hash>)",
    )
    run_parser.add_argument("--parallel", type=int, default=1, help="trials at once, each in its own process")
    run_parser.add_argument(
        "--retry-failed", action="store_true", help="run failed and skipped trials again on this rerun"
    )
    run_parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    run_parser.add_argument("--json", action="store_true", help="print the results table as JSON on stdout")
    run_parser.add_argument("--project", default=None, help="project name (or id) (default 'local')")
    run_parser.add_argument(
        "--user", help="owner of the recorded experiment (default $LAYERLAB_USER, else your login)"
    )
    run_parser.add_argument("--no-record", action="store_true", help="do not record it in the store")
    run_parser.add_argument("--remote", metavar="URL", help="create it on a lab server and follow it")
    resume_parser = verbs.add_parser(
        "resume", help="run a cancelled or failed lab experiment on (its completed trials are kept)"
    )
    resume_parser.add_argument("experiment_id", type=int, metavar="ID", help="the experiment's id")
    resume_parser.add_argument(
        "--remote", metavar="URL", help="the lab server (default: this machine's store)"
    )
    resume_parser.add_argument(
        "--json", action="store_true", help="JSON on stdout (with --remote: the results table at the end)"
    )
    verbs.add_parser("kinds", help="list the experiment kinds")


def run(args: argparse.Namespace) -> int:
    from layerlab.cli.commands.train import stderr_logging

    stderr_logging()
    if args.verb == "kinds":
        return list_kinds()
    if args.verb == "resume":
        return resume_remote(args) if args.remote else resume_here(args)
    if args.verb != "run":
        raise ConfigError("name a verb", hint="layerlab experiment run CONFIG, resume ID, or kinds")
    if not 1 <= args.parallel <= 64:
        raise ConfigError(f"trials at once must be in [1, 64], got {args.parallel}", where="--parallel")
    if args.remote:
        return run_remote(args)
    return run_here(args)


def list_kinds() -> int:
    from layerlab.research.base import known_kinds

    for name, cls in known_kinds().items():
        print(f"{name:24} {cls.summary}")
    return 0


def default_out_dir(spec) -> Path:
    from layerlab.train.rundir import layerlab_home

    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", spec.name).strip("-.") or spec.kind_name
    return layerlab_home() / "experiments" / f"{slug[:80]}-{spec.fingerprint()[:8]}"


def table_json(document: dict, extra: dict) -> dict:
    keys = ("title", "columns", "rows", "findings", "reference", "seeds", "counts", "seconds")
    return {**extra, **{k: document.get(k) for k in keys}}


def print_table(document: dict, out) -> None:
    from layerlab.research.report import markdown_table

    print(f"\n{document['title']}", file=out)
    for line in markdown_table(document["columns"], document["rows"]):
        print(line, file=out)
    for finding in document.get("findings", []):
        print(f"- {finding}", file=out)


def run_here(args: argparse.Namespace) -> int:
    from layerlab.research.local import ExperimentInterrupted, run_local
    from layerlab.research.spec import load_experiment_spec
    from layerlab.train.rundir import layerlab_home

    spec = load_experiment_spec(args.config, args.overrides)  # every error before anything is written
    if args.name:
        spec.name = args.name[:200]
    out_dir = Path(args.out) if args.out else default_out_dir(spec)
    out = sys.stderr if args.json else sys.stdout
    recorder = open_recorder(args, spec, out_dir)
    progress = Progress(out, recorder)
    print(f"experiment {spec.name} ({spec.kind_name}) in {out_dir}", file=out, flush=True)
    try:
        outcome = run_local(
            spec,
            out_dir,
            parallel=args.parallel,
            on_event=progress,
            device=args.device,
            cache_dir=layerlab_home() / "cache",
            callbacks_for=recorder.callbacks_for if recorder is not None and args.parallel == 1 else None,
            retry_failed=args.retry_failed,
        )
    except (ExperimentInterrupted, KeyboardInterrupt) as exc:
        if recorder is not None:
            recorder.finish(None, "interrupted: rerun the same command to resume")
        text = exc.one_line() if isinstance(exc, LayerlabError) else "interrupted"
        print(f"{text}; rerun the same command to resume it", file=sys.stderr)
        return 130
    if recorder is not None:
        recorder.finish(outcome.document)
    document = outcome.document
    done = f"{len(outcome.ran)} trained, {len(outcome.resumed)} resumed"
    print(f"report: {out_dir / 'report.md'} ({done})", file=out)
    if args.json:
        extra = {"out_dir": str(out_dir), "experiment_id": recorder.experiment_id if recorder else None}
        print(json.dumps(table_json(document, extra), default=str))
    else:
        print_table(document, sys.stdout)
    return 0


def open_recorder(args: argparse.Namespace, spec, out_dir: Path):
    """The store recorder, or None (``--no-record``, LAYERLAB_RECORD=0, or a store that fails: one warning)."""
    from layerlab.cli.commands.train import first_line, record_owner, store_migrated, warn

    env = os.environ.get("LAYERLAB_RECORD", "1").strip().lower()
    if args.no_record or env in ("0", "false", "no", "off"):
        return None
    try:
        store_migrated()
        from layerlab.apps.experiments.local import LocalExperimentRecorder

        return LocalExperimentRecorder(
            spec, out_dir, username=record_owner(args), project=str(args.project or "local"), warn=warn
        )
    except ConfigError:
        raise
    except Exception as exc:  # unreachable or unwritable store: run unrecorded
        warn(f"not recording this experiment: cannot use the lab database ({first_line(exc)})")
        return None


class Progress:
    """One line per trial as it starts and ends; hands each event to the store recorder first."""

    def __init__(self, out, recorder):
        self.out, self.recorder = out, recorder
        self.finished = 0

    def __call__(self, event: dict) -> None:
        if self.recorder is not None:
            self.recorder.on_event(event)
        kind = event.get("event")
        if kind == "trial_started":
            verb = "resuming" if event.get("resumed") else "training" if not event.get("probe") else "probing"
            print(f"trial {event['key']}: {verb}", file=self.out, flush=True)
        elif kind == "trial_finished":
            self.finished += 1
            summary = event.get("summary") or {}
            metric = summary.get("test_accuracy")
            text = f", test_accuracy {metric:.4f}" if isinstance(metric, int | float) else ""
            error = f": {summary['error']}" if summary.get("error") else ""
            print(
                f"trial {event['key']}: {event['status']}{text} ({event.get('seconds', 0):.1f} s){error}",
                file=self.out,
                flush=True,
            )


def run_remote(args: argparse.Namespace) -> int:
    from layerlab.cli.commands.train import remote_project
    from layerlab.core.mappingfile import read_mapping

    client = remote_client(args.remote)
    config = read_mapping(args.config, what="a mapping (seed, data, model, train, experiment)")
    project = remote_project(client, str(args.project or "local"))
    body = {"project": project, "config": config, "name": args.name, "overrides": list(args.overrides)}
    experiment = client.request("POST", "experiments/", body)
    out = sys.stderr if args.json else sys.stdout
    print(
        f"experiment {experiment['id']} on {client.url}: {len(experiment.get('trials', []))} trials queued",
        file=out,
    )
    return follow_remote(client, experiment, args)


def remote_client(url: str):
    """A client of the lab server at ``url`` with the token of ``LAYERLAB_TOKEN``."""
    from layerlab.client import LabClient

    if not os.environ.get("LAYERLAB_TOKEN"):
        raise LayerlabError(
            "LAYERLAB_TOKEN is not set", hint="export LAYERLAB_TOKEN=$(layerlab token NAME) on the server"
        )
    return LabClient(url)


def resume_remote(args: argparse.Namespace) -> int:
    """``experiment resume ID --remote URL``: resume it on the server, then follow it as ``run --remote``."""
    client = remote_client(args.remote)
    experiment = client.request("POST", f"experiments/{args.experiment_id}/resume/")
    out = sys.stderr if args.json else sys.stdout
    running = sum(1 for t in experiment.get("trials", []) if t["status"] == "running")
    print(f"experiment {experiment['id']} on {client.url} resumed: {running} trials queued", file=out)
    return follow_remote(client, experiment, args)


def resume_here(args: argparse.Namespace) -> int:
    """``experiment resume ID``: resume a lab experiment in this machine's store; its workers run the trials."""
    from layerlab.cli.commands.train import store_migrated

    store_migrated()
    from layerlab.apps.experiments.models import Experiment
    from layerlab.apps.experiments.services import experiment_resume

    experiment = Experiment.objects.filter(id=args.experiment_id).first()
    if experiment is None:
        raise LayerlabError(f"experiment {args.experiment_id} does not exist in this machine's store")
    experiment = experiment_resume(experiment=experiment)
    running = experiment.trial_rows.filter(status="running").count()
    if args.json:
        print(json.dumps({"experiment_id": experiment.id, "status": experiment.status, "queued": running}))
    else:
        print(f"experiment {experiment.id} resumed: {running} trials queued for this lab's workers")
    return 0


def follow_remote(client, experiment: dict, args: argparse.Namespace) -> int:
    """Poll a server experiment until it ends; its table on stdout (Ctrl-C cancels it on the server)."""
    out = sys.stderr if args.json else sys.stdout
    last = None
    try:
        while experiment["status"] == "running":
            time.sleep(1.0)
            experiment = client.request("GET", f"experiments/{experiment['id']}/")
            counts = ", ".join(f"{n} {s}" for s, n in experiment["counts"].items() if n)
            if counts != last:
                print(f"experiment {experiment['id']}: {counts}", file=out, flush=True)
                last = counts
    except KeyboardInterrupt:
        client.request("POST", f"experiments/{experiment['id']}/cancel/")
        print(f"cancel requested for experiment {experiment['id']} on {client.url}", file=sys.stderr)
        raise
    if experiment["status"] != "finished":
        raise LayerlabError(
            f"experiment {experiment['id']} was {experiment['status']}"
            + (f": {experiment['error']}" if experiment.get("error") else ""),
            where="--remote",
        )
    document = client.request("GET", f"experiments/{experiment['id']}/report/")
    if args.json:
        print(json.dumps(table_json(document, {"experiment_id": experiment["id"]}), default=str))
    else:
        print_table(document, sys.stdout)
    return 0
