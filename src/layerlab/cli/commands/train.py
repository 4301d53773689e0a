"""``layerlab train``: train a network from an experiment config (recorded in the lab's store), or resume
a run; ``--remote URL`` trains on a lab server instead."""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import sys
from pathlib import Path

from layerlab.cli.render import print_confusion
from layerlab.core.errors import CheckpointError, ConfigError, DivergedError, LayerlabError

HELP = "train a network from an experiment config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", help="experiment config (YAML or JSON); optional with --resume")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key",
    )
    parser.add_argument("--run-dir", help="run directory (default $LAYERLAB_HOME/runs/<config>-<timestamp>)")
    parser.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as JSON on the last stdout line"
    )
    from layerlab.cli import distributed as group

    group.add_arguments(parser)
    store = parser.add_argument_group(
        "the lab's store (runs ls, the API and the dashboard show recorded runs)"
    )
    store.add_argument(
        "--no-record",
        action="store_true",
        help="do not record the run in the store (also LAYERLAB_RECORD=0)",
    )
    store.add_argument(
        "--user", help="owner of the recorded run (default $LAYERLAB_USER, else your login name)"
    )
    store.add_argument(
        "--project", default=None, help="project name (or id) of the run (default 'local'; created if new)"
    )
    store.add_argument(
        "--tag",
        dest="tags",
        action="append",
        default=[],
        metavar="TAG",
        help="tag the recorded run (repeat it, or a,b); filter with `runs ls --tag` or ?tag= in the API",
    )
    store.add_argument(
        "--remote",
        metavar="URL",
        help="train on this lab server instead and follow it (token from LAYERLAB_TOKEN)",
    )


def stderr_logging() -> None:
    """Warnings and notes of the engine as one plain line each on stderr."""
    logger = logging.getLogger("layerlab")
    ours = [h for h in logger.handlers if getattr(h, "_layerlab_cli", False)]
    for handler in ours:
        handler.stream = sys.stderr  # replaced since (tests, embedding); the old one may be closed
    if not ours:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        handler._layerlab_cli = True
        logger.addHandler(handler)
    logger.setLevel(logging.WARNING)


def print_summary(summary: dict) -> None:
    """The end of a run, for people."""

    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}%"

    print(f"run dir    {summary['run_dir']}")
    print(f"epochs     {summary['epochs']} ({summary['status']}), {summary['seconds']:.1f}s")
    if summary.get("task", "classification") != "classification":  # regression, reconstruction
        mse = "  ".join(
            f"{s} {summary[f'{s}_mse']:.4g}"
            for s in ("train", "val", "test")
            if summary.get(f"{s}_mse") is not None
        )
        print(f"mse        {mse}  (per value; weights: {summary['evaluated_weights']})")
    else:
        print(
            f"accuracy   train {pct(summary['train_accuracy'])}  val {pct(summary['val_accuracy'])}  "
            f"test {pct(summary['test_accuracy'])}  (weights: {summary['evaluated_weights']})"
        )
    matrix = summary.get("confusion_matrix")
    if matrix and len(matrix) <= 12:
        print_confusion(matrix, summary["classes"])
    elif summary.get("confusion_matrix_note"):
        print(f"confusion  {summary['confusion_matrix_note']}")
    print(f"verdict    {summary['verdict']}")
    print(f"weights    sha256 {summary['weights_sha256']}")
    if summary.get("run_id") is not None:
        print(f"run id     {summary['run_id']}")


def warn(message: str) -> None:
    """One warning line on stderr (the store's troubles never stop a training)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def tag_list(args: argparse.Namespace) -> list[str]:
    """``--tag a --tag b,c`` -> ``[a, b, c]``, checked before any training (ConfigError names a bad one)."""
    from layerlab.apps.runs.tags import tags_clean

    return tags_clean([part for given in getattr(args, "tags", None) or () for part in given.split(",")])


def recording(args: argparse.Namespace) -> bool:
    env = os.environ.get("LAYERLAB_RECORD", "1").strip().lower()
    return not args.no_record and env not in ("0", "false", "no", "off")


def record_owner(args: argparse.Namespace) -> str:
    """``--user``, else ``LAYERLAB_USER``, else the OS login name."""
    if args.user:
        return args.user
    if os.environ.get("LAYERLAB_USER"):
        return os.environ["LAYERLAB_USER"]
    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no login name (some containers)
        return "local"


def store_migrated() -> None:
    """Django set up on the lab's settings and the database migrated, quietly (as ``serve`` does)."""
    from layerlab.server.bootstrap import django_setup, migrate_database

    django_setup()
    # Django's LOGGING replaced the CLI's handler: engine notes stay one plain line each.
    logger = logging.getLogger("layerlab")
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    stderr_logging()
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        migrate_database(verbosity=0)


def open_record(args: argparse.Namespace, cfg, run_dir: Path):
    """The callback recording this run in the store, or None (with one warning) when the store fails.

    Errors the user can fix (a project they may only view) stop the command before training.
    """
    try:
        store_migrated()
        from layerlab.apps.runs.local import LocalRunRecorder, local_run_open

        run = local_run_open(
            username=record_owner(args),
            project=args.project or "local",
            config=cfg.to_dict(),
            run_dir=run_dir,
            resume=bool(args.resume),
            tags=tag_list(args),
        )
    except LayerlabError as exc:
        if isinstance(exc, ConfigError):
            raise
        warn(f"not recording this run: {first_line(exc)}")
        return None
    except Exception as exc:  # unreachable or unwritable store: train unrecorded
        warn(f"not recording this run: cannot use the lab database ({first_line(exc)})")
        return None
    return LocalRunRecorder(run.id, warn)


def record_heartbeat(recorder):
    """A beating thread while a recorded run trains (a cancel of a run whose process died closes it)."""
    from contextlib import nullcontext

    if recorder is None:
        return nullcontext()
    from django.conf import settings

    from layerlab.apps.runs.local import QuietHeartbeat

    return QuietHeartbeat(recorder.run_id, settings.LAYERLAB_HEARTBEAT_SECONDS)


def report_callbacks(cfg) -> list:
    """The reports a run writes when it ends: an autoencoder's, a clip-counting run's baseline."""
    from layerlab.inference import frames_report, reconstruction

    return reconstruction.report_callbacks(cfg) + frames_report.report_callbacks(cfg)


def run(args: argparse.Namespace) -> int:
    from layerlab.cli import distributed as group
    from layerlab.inference import frames_report
    from layerlab.train import rundir
    from layerlab.train.config import load_experiment
    from layerlab.train.progress import ProgressCallback
    from layerlab.train.runner import train_experiment

    stderr_logging()
    tag_list(args)  # a bad --tag stops the command before anything is trained or recorded
    if args.remote:
        return run_remote(args)
    writer = True
    if group.in_group():  # one rank of a torchrun group: rank 0 records, shows and prints
        group.rank_setup(args)
        writer = group.rank() == 0
    if args.resume:
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            raise ConfigError(
                "--run-dir and --resume name different directories", hint="give only --resume DIR"
            )
        if args.config:
            print(f"note: resuming reads the config from {run_dir}; ignoring {args.config}", file=sys.stderr)
        if not run_dir.is_dir():
            raise CheckpointError(
                f"cannot resume '{run_dir}': the directory does not exist",
                hint="pass the directory of an earlier run",
                where="--resume",
            )
        cfg = rundir.read_config(run_dir, args.overrides)
    elif not args.config:
        raise ConfigError(
            "give an experiment config or --resume DIR", hint="e.g. layerlab train examples/spiral-mlp.yaml"
        )
    else:
        cfg = load_experiment(args.config, args.overrides)
        run_dir = Path(args.run_dir) if args.run_dir else rundir.default_run_dir(args.config)
        if writer:  # before recording: a refused directory must not touch its run's row
            rundir.check_fresh(run_dir)

    plan = group.plan_for(args, cfg, run_dir)
    if plan is not None:  # this command launches the group (torchrun) and waits for it
        return group.run_group(args, cfg, run_dir, plan)
    recorder = open_record(args, cfg, run_dir) if writer and recording(args) else None
    progress = ProgressCallback(sys.stderr if args.json else sys.stdout)
    shown = [progress] if writer else []  # the other ranks of a group train silently
    try:
        with record_heartbeat(recorder):
            summary = train_experiment(
                cfg,
                run_dir,
                resume=bool(args.resume),
                device=args.device,
                callbacks=shown + ([recorder] if recorder else []) + report_callbacks(cfg),
                cache_dir=rundir.layerlab_home() / "cache",
            )
    except BaseException as exc:
        if group.in_group():
            exc = group.as_group_stop(exc)  # a collective that failed because another rank died
        if recorder is not None:
            recorder.finish(*outcome(exc))
        if isinstance(exc, group.GroupStopped):
            return exc.exit_code  # quietly: the launcher says in one line which rank failed
        if not writer and isinstance(exc, DivergedError):
            return 0  # every rank diverged alike: rank 0 writes the summary and says it (exit 5)
        raise
    finally:
        group.rank_done()
        progress.close()
    if recorder is not None:
        recorder.finish("cancelled" if recorder.cancelled else "succeeded", summary)
    summary = {**summary, "run_id": recorder.run_id if recorder is not None else None}
    if not writer:
        return 0
    counting = frames_report.read_report(run_dir) if frames_report.asks_for_frames(cfg.to_dict()) else None
    if args.json:
        print(json.dumps({**summary, **({"frames_report": counting} if counting else {})}, default=str))
    else:
        print_summary(summary)
        for line in frames_report.summary_lines(counting) if counting else ():
            print(line)
    return 0


def outcome(exc: BaseException) -> tuple[str, None, str]:
    """How a training that raised ends in the store: cancelled (Ctrl-C) or failed, with the reason in words."""
    if isinstance(exc, KeyboardInterrupt):
        return "cancelled", None, "interrupted (Ctrl-C)"
    if isinstance(exc, LayerlabError):
        return "failed", None, exc.one_line()
    return "failed", None, f"internal error: {type(exc).__name__}: {exc}"


def remote_project(client, ref: str) -> int:
    """The id of the server's project ``ref`` (an id, or a name: yours first, then one you edit)."""
    from layerlab.client import ClientError

    if ref.isdigit():
        try:
            found = [client.request("GET", f"projects/{ref}/")]
        except ClientError as exc:
            if exc.status != 404:
                raise
            found = []
    else:
        found = []
    found = found or client.request("GET", "projects/", query={"name": ref, "limit": 200})["results"]
    if not found:
        raise ConfigError(
            f"no project '{ref}' on {client.url} that you can see",
            hint="name an existing project (name or id) or create it in the dashboard",
            where="--project",
        )
    rank = {"owner": 0, "editor": 1}
    found.sort(key=lambda p: rank.get(p.get("my_role"), 9))
    if found[0].get("my_role") not in rank:
        raise ConfigError(
            f"you may only view project '{ref}' on {client.url}",
            hint="name a project you own or edit",
            where="--project",
        )
    return int(found[0]["id"])


def run_remote(args: argparse.Namespace) -> int:
    """Submit the resolved config to a lab server, follow it, print its summary like a local run."""
    from layerlab.client import LabClient
    from layerlab.train.config import load_experiment

    if args.resume:
        raise ConfigError(
            "--resume continues a local run directory",
            hint="resume a server run with POST /api/runs/<id>/resume/ or in the dashboard",
            where="--remote",
        )
    if not args.config:
        raise ConfigError("give an experiment config", hint="layerlab train CONFIG --remote URL")
    if not os.environ.get("LAYERLAB_TOKEN"):
        raise LayerlabError(
            "LAYERLAB_TOKEN is not set", hint="export LAYERLAB_TOKEN=$(layerlab token NAME) on the server"
        )
    for flag, given in (("--run-dir", args.run_dir), ("--user", args.user), ("--no-record", args.no_record)):
        if given:
            print(f"note: {flag} is ignored with --remote (the server decides)", file=sys.stderr)
    cfg = load_experiment(args.config, args.overrides)
    client = LabClient(args.remote)
    project = remote_project(client, str(args.project or "local"))
    out = sys.stderr if args.json else sys.stdout
    run = client.submit_run(
        project,
        cfg.to_dict(),
        name=cfg.to_dict().get("name") or Path(args.config).stem,
        tags=tag_list(args),
    )
    try:
        done = client.follow(run["id"], lambda line: print(line, file=out, flush=True), poll=0.5)
    except KeyboardInterrupt:
        # Ctrl-C stops the remote run too, as it stops a local one.
        client.request("POST", f"runs/{run['id']}/cancel/")
        print(f"cancel requested for run {run['id']} on {client.url}", file=sys.stderr)
        raise
    if done["status"] == "failed":
        raise LayerlabError(f"run {done['id']} failed on {client.url}: {done['error']}", where="--remote")
    summary = {**(done.get("summary") or {}), "run_id": done["id"]}
    if args.json:
        print(json.dumps(summary, default=str))
    elif "weights_sha256" in summary:
        print_summary(summary)
    else:
        print(f"run {done['id']} {done['status']} ({done['progress']['text']})")
    return 0 if done["status"] == "succeeded" else 1
