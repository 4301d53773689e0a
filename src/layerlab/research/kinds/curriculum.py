"""The ``curriculum`` experiment (Bengio et al. 2009; Wu, Dyer & Neyshabur, ICLR 2021): does the order help?

For every setting (a label-noise level x a training budget) a scoring run (the "teacher") is trained on
that setting's data; then, over at least five seeds, four conditions train the base network:

* ``curriculum``: easiest examples first (the teacher's loss, or 1 - its confidence), growing by the pacing;
* ``anti``: the hardest first, the same pacing;
* ``random``: growing random subsets with the same pacing (the control for the smaller early epochs);
* ``plain``: ordinary training on all the data every epoch.

The report gives each condition's mean test accuracy with its interval, Welch's p-value against plain
training, and one plain sentence per condition saying whether the difference is significant. Wu et al.
found that curricula help mainly under label noise or a short budget and not otherwise; when no
condition beats plain training the report says so in as many words.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from layerlab.core.configtree import setting
from layerlab.core.errors import ConfigError
from layerlab.research.base import ExperimentKind, Plot, Report, Trial, TrialResult, register_kind
from layerlab.research.stats import fmt_ci, mean_ci, welch

CONDITIONS = ("curriculum", "anti", "random", "plain")
ORDERS = {"curriculum": "easy_first", "anti": "hard_first", "random": "random"}
NAMES = {
    "curriculum": "curriculum (easy first)",
    "anti": "anti-curriculum (hard first)",
    "random": "random-order growing subsets",
    "plain": "plain training",
}
ALPHA = 0.05
REFERENCE = {
    "source": "Wu, Dyer & Neyshabur, When Do Curricula Work? (ICLR 2021)",
    "columns": ["setting", "finding"],
    "rows": [
        {
            "setting": "standard training",
            "finding": "no benefit from curricula, anti-curricula or random pacing",
        },
        {"setting": "short training budget", "finding": "curricula (and random pacing) can help"},
        {"setting": "noisy labels", "finding": "curricula can help"},
    ],
}


@dataclass
class CurriculumOptions:
    """Options of ``experiment: {kind: curriculum}``."""

    seeds: list[int] = setting(default_factory=lambda: [0, 1, 2, 3, 4], help="seeds (at least 5)", minimum=0)
    conditions: list[str] = setting(default_factory=lambda: list(CONDITIONS), help="which conditions run")
    noise: list[float] = setting(
        default_factory=lambda: [0.0, 0.4],
        help="label-noise fractions of the training split",
        minimum=0.0,
        below=1.0,
    )
    budgets: list[int] | None = setting(
        None, help="training epochs per setting (default: the base epochs and a quarter of them)", minimum=1
    )
    by: Literal["loss", "confidence"] = "loss"
    pacing: Literal["linear", "step", "exponential"] = "linear"
    start: float = setting(0.2, help="fraction at epoch 1", above=0.0, maximum=1.0)
    until: float = setting(
        0.5, help="fraction of the epochs after which all data is used", above=0.0, maximum=1.0
    )
    steps: int = setting(4, help="step pacing: increments", minimum=1, maximum=10_000)
    teacher: dict = field(default_factory=dict)  # edits of the base config for the scoring runs
    teacher_seed: int = setting(10_000, help="the scoring runs' seed", minimum=0, maximum=2**32 - 1)
    level: float = setting(0.95, help="confidence level", above=0.0, below=1.0)

    def validate(self, where: str) -> None:
        if len(self.seeds) < 5:
            raise ConfigError(
                f"give at least 5 seeds (got {len(self.seeds)}): fewer cannot show a significant difference",
                hint="e.g. seeds: [0, 1, 2, 3, 4]",
                where=f"{where}.seeds",
            )
        for name in ("seeds", "noise", "conditions"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ConfigError(f"{name} lists a value twice", where=f"{where}.{name}")
        unknown = [c for c in self.conditions if c not in CONDITIONS]
        if unknown or not self.conditions:
            raise ConfigError(
                f"unknown condition '{unknown[0] if unknown else ''}'",
                hint=f"choose from: {', '.join(CONDITIONS)}",
                where=f"{where}.conditions",
            )
        if self.budgets is not None and (not self.budgets or len(set(self.budgets)) != len(self.budgets)):
            raise ConfigError("budgets must list distinct epoch counts", where=f"{where}.budgets")
        if not self.noise:
            raise ConfigError(
                "noise must list at least one level (0 for clean labels)", where=f"{where}.noise"
            )
        unknown = sorted(set(self.teacher) - {"data", "model", "train"})
        if unknown:
            raise ConfigError(
                f"teacher may edit data, model and train, not '{unknown[0]}'", where=f"{where}.teacher"
            )


def budgets_of(base: dict, options: CurriculumOptions) -> list[int]:
    """The training budgets (epochs): as given, else the base epochs and a quarter of them."""
    if options.budgets:
        return list(options.budgets)
    epochs = int(((base.get("train") or {}).get("epochs")) or 10)
    return sorted({epochs, max(1, epochs // 4)}, reverse=True)


def setting_key(noise: float, epochs: int) -> str:
    return f"noise={noise:g}/epochs={epochs}"


def teacher_key(noise: float) -> str:
    return f"teacher/noise={noise:g}"


def _with(base: dict, **sections) -> dict:
    out = copy.deepcopy(base)
    for name, edits in sections.items():
        out[name] = {**(out.get(name) or {}), **edits}
    return out


def significance_sentence(
    name: str, a: list[float], b: list[float], p: float | None, alpha: float = ALPHA
) -> str:
    """One plain sentence: ``name`` against plain training, the means and whether the gap is significant."""
    if len(a) < 2 or len(b) < 2 or p is None:
        return f"{name}: too few completed seeds to test against plain training."
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    if p >= alpha:
        return (
            f"{name}: {ma:.3f} vs {mb:.3f} for plain training (Welch p = {p:.3g}): "
            f"no significant difference at the {alpha:g} level."
        )
    direction = "better" if ma > mb else "worse"
    return (
        f"{name}: {ma:.3f} vs {mb:.3f} for plain training (Welch p = {p:.3g}): "
        f"significantly {direction} at the {alpha:g} level."
    )


@register_kind
class CurriculumKind(ExperimentKind):
    """Curriculum, anti-curriculum, random pacing and plain training over seeds, noise levels and budgets."""

    name = "curriculum"
    Options = CurriculumOptions
    summary = "curriculum vs anti-curriculum vs random pacing vs plain training, with noise and short budgets"

    def validate(self, base: dict, options: CurriculumOptions) -> None:
        from layerlab.train.config import experiment_from_mapping

        experiment_from_mapping(_teacher_config(base, options, options.noise[0]))

    def plan(self, base: dict, options: CurriculumOptions, done: Mapping[str, TrialResult]) -> list[Trial]:
        trials: list[Trial] = []
        needs_teacher = any(c in ("curriculum", "anti") for c in options.conditions)
        for noise in options.noise:
            if needs_teacher:
                trials.append(
                    Trial(
                        teacher_key(noise),
                        _teacher_config(base, options, noise),
                        {"condition": "teacher", "noise": noise},
                    )
                )
            for epochs in budgets_of(base, options):
                for condition in options.conditions:
                    for seed in options.seeds:
                        trials.append(self._trial(base, options, noise, epochs, condition, seed))
        return trials

    @staticmethod
    def _trial(base: dict, options, noise: float, epochs: int, condition: str, seed: int) -> Trial:
        train: dict = {"epochs": epochs}
        needs: tuple[str, ...] = ()
        if condition != "plain":
            curriculum = {
                "order": ORDERS[condition],
                "pacing": options.pacing,
                "start": options.start,
                "until_epoch": max(1, round(options.until * epochs)),
                "steps": options.steps,
            }
            if condition != "random":
                curriculum["score"] = {"run": f"trial:{teacher_key(noise)}", "by": options.by}
                needs = (teacher_key(noise),)
            train["curriculum"] = curriculum
        config = _with(base, data={"label_noise": noise}, train=train)
        config["seed"] = seed
        labels = {"condition": condition, "noise": noise, "epochs": epochs, "seed": seed}
        return Trial(f"{condition}/{setting_key(noise, epochs)}/seed={seed}", config, labels, needs=needs)

    def report(self, base: dict, options: CurriculumOptions, results: Mapping[str, TrialResult]) -> Report:
        rows, findings, series = [], [], {}
        gains = []
        settings = [(n, e) for n in options.noise for e in budgets_of(base, options)]
        for noise, epochs in settings:
            key = setting_key(noise, epochs)
            values = {c: _accuracies(results, f"{c}/{key}", options.seeds) for c in options.conditions}
            plain = values.get("plain", [])
            for condition in options.conditions:
                mean, lo, hi = mean_ci(values[condition], options.level)
                p = welch(values[condition], plain) if condition != "plain" and "plain" in values else None
                row = {
                    "noise": noise,
                    "epochs": epochs,
                    "condition": NAMES[condition],
                    "test_accuracy": fmt_ci(mean, lo, hi),
                    "mean": mean,
                    "lo": lo,
                    "hi": hi,
                    "n": len(values[condition]),
                    "p_vs_plain": p,
                    "significant": (p is not None and p < ALPHA) if condition != "plain" else None,
                }
                rows.append(row)
                line = series.setdefault(
                    condition, {"label": NAMES[condition], "x": [], "y": [], "lo": [], "hi": []}
                )
                (
                    line["x"].append(f"{noise:g}, {epochs} ep"),
                    line["y"].append(mean),
                    line["lo"].append(lo),
                    line["hi"].append(hi),
                )
                if condition != "plain" and "plain" in values:
                    sentence = significance_sentence(NAMES[condition], values[condition], plain, p)
                    findings.append(f"[label noise {noise:g}, {epochs} epochs] {sentence}")
                    if (
                        p is not None
                        and p < ALPHA
                        and mean is not None
                        and mean > sum(plain) / max(1, len(plain))
                    ):
                        gains.append(f"{NAMES[condition]} at label noise {noise:g} with {epochs} epochs")
        findings.insert(0, _verdict(gains, "plain" in options.conditions, settings))
        findings.append(
            "Every curriculum epoch before the last stage trains on fewer examples, so it also takes fewer "
            "steps than plain training; the random-order condition has the same pacing and isolates that effect."
        )
        plot = Plot(
            name="conditions",
            title="Test accuracy per setting (mean and interval over seeds)",
            x_label="label noise, epochs",
            y_label="test accuracy",
            kind="bar",
            series=list(series.values()),
        )
        return Report(
            title=f"{base.get('name') or 'curriculum'}: does the order of examples help? ({len(options.seeds)} seeds)",
            columns=["noise", "epochs", "condition", "test_accuracy", "n", "p_vs_plain", "significant"],
            rows=rows,
            findings=findings,
            plots=[plot],
            reference=REFERENCE,
            extra={"alpha": ALPHA, "gains": gains, "level": options.level},
        )


def _teacher_config(base: dict, options: CurriculumOptions, noise: float) -> dict:
    """The scoring run of a noise level: the base config (its own epochs) on the same noisy labels."""
    from layerlab.research.kinds.codes import merged

    config = merged(_with(base, data={"label_noise": noise}), options.teacher)
    (config.get("train") or {}).pop("curriculum", None)
    config["seed"] = options.teacher_seed
    return config


def _accuracies(results: Mapping[str, TrialResult], prefix: str, seeds) -> list[float]:
    out = []
    for seed in seeds:
        result = results.get(f"{prefix}/seed={seed}")
        if result is not None and result.ok and result.metric("test_accuracy") is not None:
            out.append(float(result.metric("test_accuracy")))
    return out


def _verdict(gains: list[str], has_plain: bool, settings: list[tuple[float, int]]) -> str:
    """The first finding: the gains over plain training, or a plain "No gain" naming every setting tried."""
    if not has_plain:
        return "Plain training was not run, so no condition can be tested against it."
    if not gains:
        tested = ", ".join(f"label noise {n:g} with {e} epochs" for n, e in settings)
        hard_cases = any(n > 0 for n, _ in settings) and len({e for _, e in settings}) > 1
        wu = "Wu, Dyer & Neyshabur (2021) found no gain in standard training either"
        if hard_cases:
            wu += ", and here there was none even with noisy labels or a short budget, where they saw gains"
        else:
            wu += "; they saw gains mainly with noisy labels or short budgets, which this run did not test"
        return f"No gain: no ordering beat plain training significantly in any setting ({tested}). {wu}."
    return "Significant gains over plain training: " + "; ".join(gains) + "."
