"""``layerlab pipeline run|show FILE``: run a pipeline of stages with Luigi, or show what is done."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "run a pipeline of stages (dataset, train, fine-tune, evaluate, export, report) with Luigi"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``pipeline run FILE [--scheduler-url URL] [--workers N] [--local]`` and ``pipeline show FILE``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("file", help="the pipeline file (YAML): name, project, stages")
    common.add_argument(
        "--project", default=None, help="project name (or id); default: the file's, else 'local'"
    )
    common.add_argument(
        "--user", default=None, help="who runs it (default $LAYERLAB_USER, else your login name)"
    )
    common.add_argument("--json", action="store_true", help="print one JSON object")
    run = sub.add_parser("run", help="run every stage whose output is missing", parents=[common])
    run.add_argument(
        "--scheduler-url", default=None, help="a central Luigi scheduler (luigid), e.g. http://localhost:8082"
    )
    run.add_argument("--workers", type=int, default=1, help="Luigi worker processes (default 1)")
    run.add_argument(
        "--local", action="store_true", help="train in this process instead of on the lab's workers"
    )
    run.add_argument("--verbose", action="store_true", help="show Luigi's own log")
    sub.add_parser("show", help="each stage's identity and whether its output is there", parents=[common])


def open_lab(args: argparse.Namespace):
    """The user and project the pipeline's records go to (the database migrated, as ``train`` does)."""
    from layerlab.cli.commands.train import record_owner, store_migrated

    store_migrated()
    from layerlab.apps.accounts.services import user_get_or_create_unclaimed
    from layerlab.apps.runs.local import local_project

    user = user_get_or_create_unclaimed(username=record_owner(args))
    return user, local_project(user=user, ref=str(args.project_ref))


def run(args: argparse.Namespace) -> int:
    from layerlab.core.errors import ConfigError
    from layerlab.pipelines.spec import pipeline_load

    pipeline = pipeline_load(args.file, project=args.project)  # a bad file stops here: nothing created
    args.project_ref = pipeline.project
    if args.action == "show":
        from layerlab.pipelines.runner import pipeline_status

        open_lab(args)
        rows = pipeline_status(pipeline)
        if args.json:
            print(json.dumps({"pipeline": pipeline.name, "stages": rows}, indent=2))
        else:
            for row in rows:
                needs = f" <- {', '.join(row['requires'])}" if row["requires"] else ""
                state = "done" if row["done"] else "to run"
                print(f"{row['name']:<16} {row['kind']:<9} {row['identity']}  {state}{needs}")
        return 0
    from layerlab.pipelines.runner import pipeline_check, pipeline_run, scheduler_check

    if args.workers < 1:
        raise ConfigError("must be 1 or more", where="--workers")
    pipeline_check(pipeline)
    url = scheduler_check(args.scheduler_url) if args.scheduler_url else None
    user, project = open_lab(args)
    outcome = pipeline_run(
        pipeline,
        user=user,
        project=project,
        scheduler_url=url,
        workers=args.workers,
        local=args.local,
        verbose=args.verbose,
    )
    if args.json:
        print(
            json.dumps(
                {"pipeline": pipeline.name, "id": outcome.pipeline_id, "stages": outcome.stages}, indent=2
            )
        )
    else:
        for row in outcome.stages:
            run_text = f"  run {row['run']}" if row["run"] else ""
            print(f"{row['name']:<16} {row['kind']:<9} {row['state']:<8}{run_text}")
    for line in outcome.failures:
        print(f"error: {line}", file=sys.stderr)
    return outcome.exit_code
