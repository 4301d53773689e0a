"""research/driver.py and local.py: plans checked, needs and references, run_local end to end with resume."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from layerlab.core import runlayout
from layerlab.core.errors import ConfigError, DataError
from layerlab.research.base import KINDS, ExperimentKind, Report, Trial, TrialResult, register_kind
from layerlab.research.driver import check_plan, next_step, resolve_refs, trial_refs
from layerlab.research.local import ExperimentInterrupted, read_results, run_local, trial_dir
from layerlab.research.probes import register_probe
from layerlab.research.spec import parse_experiment
from layerlab.train.callbacks import Callback


@dataclass
class ChainOptions:
    models: list[str] = field(default_factory=lambda: ["a"])
    grow: int = 0  # trials added one by one after the first completes (a doubling-search stand-in)
    fail: bool = False  # the base trials are a failing probe
    probe_after: bool = False  # one more trial: a probe that succeeds


@register_kind
class Chain(ExperimentKind):
    """A test kind: a base trial per model, a second trial initialised from it, ``grow`` later trials."""

    name = "test_chain"
    Options = ChainOptions

    def plan(self, base, options, done):
        trials = []
        for m in options.models:
            probe = "test_fail" if options.fail else None
            trials.append(Trial(key=f"{m}/base", config=dict(base), labels={"model": m}, probe=probe))
            tuned = {**base, "model": {**base.get("model", {}), "init_from": f"trial:{m}/base"}}
            trials.append(Trial(key=f"{m}/tuned", config=tuned, labels={"model": m}, needs=(f"{m}/base",)))
        for i in range(options.grow):
            if i == 0 or f"grow/{i - 1}" in done:
                trials.append(Trial(key=f"grow/{i}", config=dict(base)))
        if options.probe_after:
            trials.append(Trial(key="probe", config={}, probe="test_count", probe_args={"value": 7}))
        return trials

    def report(self, base, options, results):
        rows = [{"key": k, "status": r.status} for k, r in results.items()]
        return Report(title="chain", columns=["key", "status"], rows=rows, findings=[f"{len(rows)} trials"])


def _done(key, status="completed"):
    return TrialResult(key, status, {}, None, 0.0)


def chain_spec(**options):
    return parse_experiment({"experiment": {"kind": "test_chain", **options}})


def test_needs_wait_then_become_ready():
    spec = chain_spec(models=["a", "b"])
    step = next_step(spec, {})
    assert [t.key for t in step.ready] == ["a/base", "b/base"] and not step.done
    step = next_step(spec, {"a/base": _done("a/base")}, active={"b/base"})
    assert [t.key for t in step.ready] == ["a/tuned"]


def test_a_failed_need_skips_its_dependants_and_the_experiment_ends():
    spec = chain_spec()
    step = next_step(spec, {"a/base": _done("a/base", "failed")})
    assert [r.key for r in step.skipped] == ["a/tuned"]
    assert (
        step.skipped[0].status == "skipped" and "a/base did not complete" in step.skipped[0].summary["error"]
    )
    assert step.done and not step.ready


def test_a_kind_may_add_trials_as_others_finish():
    spec = chain_spec(models=[], grow=3)
    results: dict = {}
    seen = []
    while not (step := next_step(spec, results)).done:
        for trial in step.ready:
            seen.append(trial.key)
            results[trial.key] = _done(trial.key)
    assert seen == ["grow/0", "grow/1", "grow/2"]


def test_bad_plans_are_refused():
    with pytest.raises(ConfigError, match="planned twice"):
        check_plan([Trial("x", {}), Trial("x", {})])
    with pytest.raises(ConfigError, match="needs 'y', which is not planned"):
        check_plan([Trial("x", {}, needs=("y",))])
    with pytest.raises(ConfigError, match="refers to trial:y without needing it"):
        check_plan([Trial("y", {}), Trial("x", {"model": {"init_from": "trial:y"}})])
    with pytest.raises(ConfigError, match="a cycle"):
        check_plan([Trial("x", {}, needs=("y",)), Trial("y", {}, needs=("x",))])
    with pytest.raises(ConfigError, match="trial x: train.epochs"):
        check_plan([Trial("x", {"train": {"epochs": -1}})])
    with pytest.raises(ConfigError, match="not allowed"):
        Trial("../escape", {})


def test_references_are_found_and_replaced():
    config = {"model": {"init_from": "trial:a/base"}, "train": {"x": ["trial:b", 1]}, "name": "trial"}
    assert trial_refs(config) == {"a/base", "b"}
    resolved = resolve_refs(config, lambda key: f"/runs/{key}")
    assert resolved["model"]["init_from"] == "/runs/a/base"
    assert resolved["train"]["x"] == ["/runs/b", 1]
    assert config["model"]["init_from"] == "trial:a/base"


class StopAt(Callback):
    """Cancels the run once ``epoch`` has ended (an interrupted experiment)."""

    def __init__(self, epoch):
        self.epoch, self.seen = epoch, 0

    def on_epoch_end(self, trainer, epoch, metrics):
        self.seen = epoch

    def should_stop(self, trainer=None):
        return self.seen >= self.epoch


def test_run_local_completes_and_a_rerun_redoes_nothing(tiny_config, tmp_path):
    events = []
    outcome = run_local(tiny_config, tmp_path / "exp", on_event=events.append)
    assert outcome.ran == ["seed=0", "seed=1"] and outcome.resumed == []
    assert {r.status for r in outcome.results.values()} == {"completed"}
    document = json.loads((tmp_path / "exp" / runlayout.REPORT_JSON).read_text())
    assert [row["seed"] for row in document["rows"]] == [0, 1]
    assert document["seeds"] == [0, 1] and document["counts"] == {"completed": 2}
    assert document["trials"][0]["config"]["seed"] == 0
    assert "test_accuracy" in document["findings"][0] and "2 seed(s)" in document["findings"][0]
    assert (tmp_path / "exp" / runlayout.PLOTS_DIR / "per_seed.png").read_bytes()[:4] == b"\x89PNG"
    assert "| seed | status | test_accuracy |" in (tmp_path / "exp" / runlayout.REPORT_MD).read_text()
    assert [e["event"] for e in events].count("trial_finished") == 2

    mtime = (trial_dir(tmp_path / "exp", "seed=0") / runlayout.SUMMARY).stat().st_mtime_ns
    again = run_local(tiny_config, tmp_path / "exp")
    assert again.ran == [] and again.resumed == []
    assert (trial_dir(tmp_path / "exp", "seed=0") / runlayout.SUMMARY).stat().st_mtime_ns == mtime
    assert again.document["rows"] == document["rows"]


def test_an_interrupted_experiment_resumes_exactly(tiny_config, tmp_path):
    straight = run_local(tiny_config, tmp_path / "straight")

    def stop_seed_1(trial, run_dir, resumed):
        return [StopAt(2)] if trial.key == "seed=1" and not resumed else []

    with pytest.raises(ExperimentInterrupted, match="trial seed=1 was cancelled"):
        run_local(tiny_config, tmp_path / "cut", callbacks_for=stop_seed_1)
    assert set(read_results(tmp_path / "cut")) == {"seed=0"}  # seed=1 is not finished
    assert not (tmp_path / "cut" / runlayout.REPORT_JSON).exists()

    resumed = run_local(tiny_config, tmp_path / "cut", callbacks_for=stop_seed_1)
    assert resumed.ran == [] and resumed.resumed == ["seed=1"]
    for key in ("seed=0", "seed=1"):
        assert (
            resumed.results[key].summary["weights_sha256"] == straight.results[key].summary["weights_sha256"]
        )
    assert resumed.results["seed=1"].summary["epochs"] == 3


def test_another_config_into_the_same_directory_is_refused(tiny_config, tmp_path):
    tiny_config["experiment"]["seeds"] = [0]
    run_local(tiny_config, tmp_path / "exp")
    with pytest.raises(ConfigError, match="holds another experiment"):
        run_local(tiny_config, tmp_path / "exp", overrides=["train.epochs=2"])


def test_bad_input_writes_nothing(tiny_config, tmp_path):
    tiny_config["experiment"]["seeds"] = [0, -3]
    with pytest.raises(ConfigError):
        run_local(tiny_config, tmp_path / "exp")
    with pytest.raises(ConfigError, match="parallel"):
        run_local({"experiment": {"kind": "seeds"}}, tmp_path / "exp", parallel=0)
    assert not (tmp_path / "exp").exists()


@register_probe("test_fail")
def failing_probe(args, inputs, run_dir, seed):
    raise DataError("the probe's input is missing", hint="a test probe")


@register_probe("test_count")
def counting_probe(args, inputs, run_dir, seed):
    return {
        "inputs": sorted(inputs),
        "seed": seed,
        "value": args["value"],
        "run_dir_exists": run_dir.is_dir(),
    }


def test_probes_run_and_a_failing_trial_skips_its_dependants(tiny_config, tmp_path):
    tiny_config["experiment"] = {"kind": "test_chain", "fail": True, "probe_after": True}
    outcome = run_local(tiny_config, tmp_path / "exp")
    statuses = {k: r.status for k, r in outcome.results.items()}
    assert statuses == {"a/base": "failed", "a/tuned": "skipped", "probe": "completed"}
    records = {t["key"]: t for t in outcome.document["trials"]}
    assert records["a/base"]["error"] == "the probe's input is missing; a test probe"
    assert "a/base did not complete" in records["a/tuned"]["error"]
    probe = outcome.results["probe"]
    assert probe.summary == {
        "status": "completed",
        "inputs": [],
        "seed": 0,
        "value": 7,
        "run_dir_exists": True,
    }
    assert json.loads((probe.run_dir / runlayout.SUMMARY).read_text())["value"] == 7
    again = run_local(tiny_config, tmp_path / "exp")  # failed and skipped trials are final too
    assert again.ran == [] and again.resumed == []
    retried = run_local(tiny_config, tmp_path / "exp", retry_failed=True)  # unless asked to retry them
    assert retried.ran == ["a/base"] and retried.results["probe"].status == "completed"
    assert retried.results["a/tuned"].status == "skipped"  # the probe fails again, deterministically


@pytest.mark.slow
def test_parallel_trials_run_in_processes(tiny_config, tmp_path):
    serial = run_local(tiny_config, tmp_path / "serial")
    pooled = run_local(tiny_config, tmp_path / "pooled", parallel=2)
    assert pooled.ran == ["seed=0", "seed=1"]
    for key in ("seed=0", "seed=1"):
        assert pooled.results[key].summary["weights_sha256"] == serial.results[key].summary["weights_sha256"]
        assert pooled.results[key].summary["num_threads"] == 1


def test_the_test_kind_is_registered_once():
    assert KINDS["test_chain"] is Chain


def test_a_trial_reference_becomes_the_needed_trials_run_directory(tiny_config, tmp_path):
    tiny_config["experiment"] = {"kind": "test_chain"}
    outcome = run_local(tiny_config, tmp_path / "exp")
    assert {k: r.status for k, r in outcome.results.items()} == {
        "a/base": "completed",
        "a/tuned": "completed",
    }
    tuned = outcome.results["a/tuned"]
    base_dir = trial_dir(tmp_path / "exp", "a/base")
    assert tuned.summary["init_from"]["source"].startswith(str(base_dir / runlayout.CHECKPOINT_DIR))
    assert tuned.summary["init_from"]["loaded"]  # the base trial's weights were loaded
    assert tuned.run_dir == trial_dir(tmp_path / "exp", "a/tuned") and tuned.run_dir.name == "a__tuned"


def test_a_report_that_fails_is_one_line_and_keeps_the_trials(tiny_config, tmp_path, monkeypatch):
    from layerlab.core.errors import LayerlabError

    tiny_config["experiment"]["seeds"] = [0]

    def broken(self, base, options, results):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(KINDS["seeds"], "report", broken)
    with pytest.raises(LayerlabError, match="the seeds report failed: ZeroDivisionError: division by zero"):
        run_local(tiny_config, tmp_path / "exp")
    assert set(read_results(tmp_path / "exp")) == {"seed=0"}
    monkeypatch.undo()
    assert run_local(tiny_config, tmp_path / "exp").ran == []


def test_the_seeds_interval_of_an_accuracy_stays_in_0_1():
    from layerlab.research.kinds.seeds import Seeds, SeedsOptions

    results = {
        f"seed={s}": TrialResult(f"seed={s}", "completed", {"test_accuracy": a}, None, 1.0)
        for s, a in zip(range(3), [1.0, 1.0, 0.9], strict=True)
    }
    report = Seeds().report({}, SeedsOptions(seeds=[0, 1, 2]), results)
    assert report.extra["hi"] == 1.0 and 0.0 <= report.extra["lo"] < report.extra["mean"]
    assert "clipped to [0, 1]" in report.findings[0] and "over 3 seed(s)" in report.findings[0]
    assert [row["seed"] for row in report.rows] == [0, 1, 2]
