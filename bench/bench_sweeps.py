"""Sweeps: pruning against no pruning on one task, and a 1,000-trial study's page and API.

Measured in a child process on a fresh SQLite lab home (Django reads its settings once per process).

Pruning: the same random search (one seed, so both sweeps try the same points in the same order) over
lr and width of an MLP on the spiral, trained for real by ``run_execute`` in turn, once with pruner
``asha`` and once with ``none``: epochs trained by all trials, and the best val accuracy. Targets: at
least 50% fewer epochs, best within 0.5 points.

Study: 1,000 complete trials told to a study (no training), then the sweep's page, ``GET
/api/sweeps/<id>/`` and ``GET /api/sweeps/<id>/trials/`` through Django's test client, medians of 15 after
one warm-up; target under 200 ms. ``LAYERLAB_BENCH_QUICK=1`` trains fewer trials and epochs.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = os.environ.get("LAYERLAB_BENCH_QUICK") == "1"
TRIALS = 12 if QUICK else 24
EPOCHS = 12 if QUICK else 27
STUDY_TRIALS = 1000
REPEAT = 15

CONFIG = {
    "seed": 0,
    "data": {
        "source": "spiral",
        "classes": 3,
        "points_per_class": 300,
        "split": {"method": "random", "val": 0.2},
    },
    "model": {"preset": "mlp", "options": {"hidden": [64]}},
    "train": {"epochs": EPOCHS, "batch_size": 32, "optimizer": "adam", "num_threads": 1},
}
SWEEP = {
    "method": "random",
    # Where pruning applies: within this range a trial ahead early stays ahead (a higher lr learns faster
    # and still converges), so the early epochs predict the last.
    "parameters": {"train.lr": {"distribution": "loguniform", "low": 1e-4, "high": 0.03}},
    "metric": "val_accuracy",
    "goal": "maximize",
    "trials": TRIALS,
    "parallel": 1,
    "warmup": 3,  # the pruner looks from epoch 3 on (the first epochs' accuracy is noise here)
    "seed": 7,
}


def child() -> dict:
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client

    from layerlab.apps.projects.services import project_create
    from layerlab.apps.runs.execution import run_execute
    from layerlab.apps.runs.models import Run
    from layerlab.apps.sweeps.selectors import sweep_best, sweep_epochs
    from layerlab.apps.sweeps.services import sweep_create

    call_command("migrate", verbosity=0)
    user = User.objects.create_user("bench", password="Bench-pass-12345")
    project = project_create(owner=user, name="bench")

    def sweep_run(pruner: str) -> dict:
        sweep = sweep_create(project=project, user=user, config=CONFIG, sweep={**SWEEP, "pruner": pruner})
        started = time.perf_counter()
        while True:
            run = (
                Run.objects.filter(sweep_trial__sweep=sweep, status=Run.Status.QUEUED).order_by("id").first()
            )
            if run is None:
                break
            run_execute(run_id=run.id)
        best = sweep_best(sweep=sweep)
        return {
            "epochs": sweep_epochs(sweep=sweep),
            "best": best.value if best else None,
            "seconds": time.perf_counter() - started,
            "pruned": sweep.trial_rows.filter(state="pruned").count(),
        }

    pruned, full = sweep_run("asha"), sweep_run("none")
    study = study_of_1000(project, user)
    browser = Client(SERVER_NAME="127.0.0.1")
    browser.force_login(user)

    def median_seconds(url: str) -> float:
        assert browser.get(url).status_code == 200, url
        times = []
        for _ in range(REPEAT):
            start = time.perf_counter()
            response = browser.get(url)
            times.append(time.perf_counter() - start)
            assert response.status_code == 200
        return statistics.median(times)

    start = time.perf_counter()
    browser.get(f"/api/sweeps/{study}/importances/")
    importances = time.perf_counter() - start
    return {
        "pruned": pruned,
        "full": full,
        "page": median_seconds(f"/sweeps/{study}/"),
        "api": median_seconds(f"/api/sweeps/{study}/"),
        "trials": median_seconds(f"/api/sweeps/{study}/trials/"),
        "importances_first": importances,
        "importances_cached": median_seconds(f"/api/sweeps/{study}/importances/"),
    }


def study_of_1000(project, user) -> int:
    """A finished sweep of 1,000 complete trials over two parameters, told to its Optuna study."""
    import random

    from django.utils import timezone

    from layerlab.apps.sweeps import study as studies
    from layerlab.apps.sweeps.models import Sweep, SweepTrial
    from layerlab.apps.sweeps.spec import distributions, spec_from_mapping

    section = {
        "method": "random",
        "parameters": {
            "train.lr": {"distribution": "loguniform", "low": 1e-4, "high": 0.3},
            "train.batch_size": [16, 32, 64, 128],
        },
        "trials": STUDY_TRIALS,
    }
    spec = spec_from_mapping(section)
    name = f"bench-{time.time_ns()}"
    study = studies.study_create(name=name, goal="maximize")
    sweep = Sweep.objects.create(
        project=project, name="bench-1000", study_name=name, spec=spec.to_dict(), config=CONFIG,
        method="random", metric="val_accuracy", goal="maximize", trials=STUDY_TRIALS,
        status=Sweep.Status.FINISHED, created_by=user, finished_at=timezone.now(),
    )  # fmt: skip
    rng = random.Random(0)
    rows = []
    dists = distributions(spec)
    for _ in range(STUDY_TRIALS):
        trial = study.ask(dists)
        value = min(1.0, 0.5 + 0.1 * rng.random() + 0.05 * trial.params["train.batch_size"] / 128)
        study.tell(trial, value)
        rows.append(SweepTrial(sweep=sweep, number=trial.number, trial_id=trial._trial_id, params=trial.params,
                               state="complete", value=value, epochs=EPOCHS, told_at=timezone.now()))  # fmt: skip
    SweepTrial.objects.bulk_create(rows, batch_size=500)
    return sweep.id


def row(name, value, unit, reference="", ratio=None, target="", ok=None, note=""):
    return {"name": name, "value": value, "unit": unit, "reference": reference, "ratio": ratio,
            "target": target, "ok": ok, "note": note}  # fmt: skip


def run() -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="layerlab-bench-sweeps-") as home:
        env = {**os.environ, "LAYERLAB_HOME": home, "DATABASE_URL": "",
               "DJANGO_SETTINGS_MODULE": "layerlab.server.settings"}  # fmt: skip
        done = subprocess.run(
            [sys.executable, "-m", "bench.bench_sweeps", "--child"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=3000, check=True,
        )  # fmt: skip
    f = json.loads(done.stdout.strip().splitlines()[-1])
    pruned, full = f["pruned"], f["full"]
    ratio = pruned["epochs"] / full["epochs"]
    gap = (full["best"] - pruned["best"]) * 100
    label = f"{TRIALS} trials x {EPOCHS} epochs, spiral MLP, random lr"
    return [
        row(f"epochs trained with asha pruning ({label})", pruned["epochs"], "epochs",
            f"no pruning: {full['epochs']}", round(ratio, 3), "<= 0.5 x", ratio <= 0.5,
            note=f"{pruned['pruned']} trials pruned"),
        row("best val accuracy lost to pruning", round(gap, 2), "points",
            f"no pruning: {full['best'] * 100:.1f}%, asha: {pruned['best'] * 100:.1f}%", None, "<= 0.5", gap <= 0.5),
        row(f"sweep page, {STUDY_TRIALS}-trial study", round(f["page"] * 1000, 1), "ms", "", None,
            "< 200 ms", f["page"] < 0.2),
        row(f"GET /api/sweeps/<id>/, {STUDY_TRIALS} trials", round(f["api"] * 1000, 1), "ms", "", None,
            "< 200 ms", f["api"] < 0.2),
        row(f"GET /api/sweeps/<id>/trials/, {STUDY_TRIALS} trials", round(f["trials"] * 1000, 1), "ms", "", None,
            "< 200 ms", f["trials"] < 0.2),
        row(f"importances (fANOVA), {STUDY_TRIALS} trials, first / cached",
            round(f["importances_first"] * 1000, 1), "ms", f"cached: {f['importances_cached'] * 1000:.1f} ms",
            None, "", None),
    ]  # fmt: skip


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(child()))
    else:
        for item in run():
            print(item)
