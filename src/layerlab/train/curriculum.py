"""Curriculum learning (Bengio et al. 2009): each epoch trains on the easiest fraction of the training split.

``train.curriculum`` gives a difficulty score per training example, an order and a pacing function::

    train:
      curriculum:
        score: {run: runs/teacher, by: loss}   # or {array: scores.npy} or {column: difficulty}
        order: easy_first                      # easy_first | hard_first | random
        pacing: linear                         # linear | step | exponential
        start: 0.2                             # fraction of the training split at epoch 1
        until_epoch: 10                        # all of it from this epoch on (default: train.epochs)
        steps: 4                               # step pacing: equal increments from start to 1

The score of an example comes from an earlier run's model (its loss on the example, or one minus its
softmax confidence in the example's label), from a ``.npy`` array (one value per training example, or
one per example of the whole data source before the split) or from a column of the run's CSV data file
(kept out of the features with ``data.ignore_columns``). The engine never imports ``inference``: the
earlier run's network is rebuilt from its checkpoint's spec (``adapters.network_from_dict``).

Scores are computed once when a run starts and kept in every checkpoint, so a resumed run trains on the
same subsets and order as an uninterrupted one (bitwise). Within an epoch's subset the order is the
epoch's seeded shuffle (``rng.shuffle_generator``), as without a curriculum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from layerlab.core.configtree import setting
from layerlab.core.errors import ConfigError, DataError

MAX_EPOCHS = 1_000_000
SCORE_BATCH = 512  # examples per forward pass when an earlier run's model scores the training split


@dataclass
class ScoreConfig:
    """Where the difficulty of each training example comes from: exactly one of run, array, column."""

    run: str | None = setting(
        None, help="an earlier run (directory, checkpoint file, or run:<id> in the lab)"
    )
    by: Literal["loss", "confidence"] = "loss"  # run: its loss, or 1 - its confidence in the label
    array: str | None = setting(None, help=".npy file: one score per training example (or per example)")
    column: str | None = setting(None, help="a column of the run's CSV data file (in data.ignore_columns)")

    def validate(self, where: str) -> None:
        given = [name for name in ("run", "array", "column") if getattr(self, name)]
        if len(given) != 1:
            raise ConfigError(
                f"give exactly one source of scores, got {', '.join(given) or 'none'}",
                hint="score: {run: <run dir>} or {array: scores.npy} or {column: NAME}",
                where=where,
            )
        if self.array and not str(self.array).endswith(".npy"):
            raise ConfigError(f"'{self.array}' is not a .npy file", hint="save with numpy.save", where=where)


@dataclass
class CurriculumConfig:
    """A difficulty order of the training split and how fast the trained fraction grows."""

    score: ScoreConfig | None = None
    order: Literal["easy_first", "hard_first", "random"] = "easy_first"
    pacing: Literal["linear", "step", "exponential"] = "linear"
    start: float = setting(0.2, help="fraction of the training split at epoch 1", above=0.0, maximum=1.0)
    until_epoch: int | None = setting(
        None, help="the first epoch on all data (default: train.epochs)", minimum=1, maximum=MAX_EPOCHS
    )
    steps: int = setting(4, help="step pacing: equal increments from start to 1", minimum=1, maximum=10_000)

    def validate(self, where: str) -> None:
        if self.order == "random" and self.score is not None:
            raise ConfigError(
                "order random draws its own scores (seeded); the given score would be ignored",
                hint="remove train.curriculum.score, or use order easy_first / hard_first",
                where=f"{where}.score",
            )
        if self.order != "random" and self.score is None:
            raise ConfigError(
                f"order {self.order} needs a difficulty score",
                hint="score: {run: <earlier run dir>, by: loss} or {array: scores.npy}",
                where=f"{where}.score",
            )


def fraction_at(cfg: CurriculumConfig, epoch: int, epochs: int) -> float:
    """The pacing function: the fraction of the training split used at ``epoch`` (1-based).

    ``start`` at epoch 1, 1.0 from ``until_epoch`` (default ``epochs``) on; linear, in ``steps`` equal
    steps, or geometric (exponential) in between.
    """
    until = cfg.until_epoch or epochs
    if epoch >= until or cfg.start >= 1.0:
        return 1.0
    progress = (max(epoch, 1) - 1) / (until - 1)  # 0 at epoch 1, 1 at until (until > epoch >= 1 here)
    if cfg.pacing == "linear":
        return cfg.start + (1.0 - cfg.start) * progress
    if cfg.pacing == "step":
        return cfg.start + (1.0 - cfg.start) * math.floor(cfg.steps * progress + 1e-9) / cfg.steps
    return cfg.start * (1.0 / cfg.start) ** progress


def subset_size(fraction: float, n: int) -> int:
    """How many examples a fraction of ``n`` is (at least one, rounded up)."""
    return max(1, min(n, math.ceil(fraction * n - 1e-9)))


def ranking(scores, order: str):
    """Example indices from first to last trained: ascending score (easy first) or descending; ties
    keep the examples' order, so the ranking is a pure function of the scores."""
    import numpy as np

    values = np.asarray(scores, dtype=np.float64)
    keys = values if order != "hard_first" else -values
    return np.argsort(keys, kind="stable")


def check_scores(scores, n_train: int, n_source: int | None, what: str):
    """The scores as float64 per training example; a DataError for a wrong length or NaN/inf values.

    ``n_source`` is the number of examples of the data source before the split: an array of that
    length is taken as one score per source example (the caller picks the training ones).
    """
    import numpy as np

    values = np.asarray(scores, dtype=np.float64).reshape(-1) if np.ndim(scores) else None
    if values is None or np.ndim(scores) > 2 or (np.ndim(scores) == 2 and min(np.shape(scores)) != 1):
        raise DataError(
            f"{what} must be a vector of one score per example, got shape {np.shape(scores)}",
            where="train.curriculum.score",
        )
    accepted = {n_train} | ({n_source} if n_source else set())
    if len(values) not in accepted:
        other = (
            f" (or {n_source}, one per example of the data source)"
            if n_source and n_source != n_train
            else ""
        )
        raise DataError(
            f"{what} has {len(values)} scores but the training split has {n_train} examples{other}",
            hint="give one score per training example",
            where="train.curriculum.score",
        )
    bad = ~np.isfinite(values)
    if bad.any():
        raise DataError(
            f"{what} holds {int(bad.sum())} NaN or infinite score(s) (first at position {int(np.argmax(bad))})",
            hint="every example needs a finite difficulty",
            where="train.curriculum.score",
        )
    return values


def model_scores(source: str | Path, by: str, x, y, device) -> list[float]:
    """The difficulty of each training example for an earlier run's model: its cross-entropy loss, or
    one minus its softmax probability of the label.

    The network is rebuilt from the checkpoint's spec (no ``inference``); its input shape and classes
    must match this run's data.
    """
    import torch

    from layerlab.train import adapters
    from layerlab.train.checkpoint import checkpoint_load, resolve_checkpoint

    path = resolve_checkpoint(source)
    state = checkpoint_load(path)
    where = "train.curriculum.score.run"
    model = adapters.network_from_dict(state["network"])
    model.load_state_dict(state["model"])
    model.to(device).eval()
    theirs, ours = list(state.get("input_shape") or []), list(x.shape[1:])
    if theirs and ours and [int(s) for s in theirs] != [int(s) for s in ours]:
        raise ConfigError(
            f"the scoring run takes inputs of shape {theirs}, this run's data gives {ours}",
            hint="score with a run trained on the same data section",
            where=where,
        )
    values: list[float] = []
    with torch.no_grad():
        for start in range(0, len(x), SCORE_BATCH):
            index = torch.arange(start, min(start + SCORE_BATCH, len(x)))  # a data view reads CPU indices
            logits = model(x[index.to(x.device) if isinstance(x, torch.Tensor) else index]).float()
            labels = y[index.to(y.device)]
            if logits.ndim != 2 or int(labels.max()) >= logits.shape[1]:
                raise ConfigError(
                    f"the scoring run predicts {logits.shape[-1]} classes, this run's labels need more",
                    hint="score with a run trained on the same classes",
                    where=where,
                )
            if by == "loss":
                part = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
            else:
                part = 1.0 - torch.softmax(logits, 1).gather(1, labels[:, None])[:, 0]
            values.extend(part.double().cpu().tolist())
    return values


def array_scores(path: str) -> object:
    """The scores stored in a ``.npy`` file (never pickled objects)."""
    import numpy as np

    file = Path(path).expanduser()
    if not file.is_file():
        raise DataError(f"score file '{path}' does not exist", where="train.curriculum.score.array")
    try:
        return np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(
            f"score file '{path}' is not a readable .npy array ({type(exc).__name__})",
            where="train.curriculum.score.array",
        ) from None


def column_scores(data_cfg, name: str) -> list[float]:
    """A named column of the run's CSV data file, one value per row (the CSV importer's rows)."""
    import csv

    from layerlab.data.sources.csvfile import csv_file

    where = "train.curriculum.score.column"
    if data_cfg.source != "csv":
        raise ConfigError(f"a score column needs a csv data source, not {data_cfg.source}", where=where)
    if name not in (data_cfg.ignore_columns or []):
        raise ConfigError(
            f"column '{name}' would also be a feature of the network",
            hint=f"add it to data.ignore_columns, e.g. --set 'data.ignore_columns=[{name}]'",
            where=where,
        )
    with csv_file(data_cfg).open(newline="", encoding="utf-8-sig") as handle:
        rows = [row for row in csv.reader(handle) if row and any(cell.strip() for cell in row)]
    header = [cell.strip() for cell in rows[0]] if rows else []
    if name not in header:
        raise DataError(f"the CSV file has no column '{name}' in its header", where=where)
    column = header.index(name)
    values = []
    for r, row in enumerate(rows[1:], start=2):
        try:
            values.append(float(row[column]))
        except (ValueError, IndexError):
            raise DataError(f"row {r}, column '{name}': the score is not a number", where=where) from None
    return values


class Curriculum:
    """The ranking of a run's training split and the subset each epoch trains on."""

    def __init__(self, cfg: CurriculumConfig, scores, epochs: int):
        self.cfg, self.epochs = cfg, epochs
        self.scores = scores  # float64 numpy array, one per training example
        self.order = ranking(scores, cfg.order)

    @classmethod
    def for_trainer(cls, trainer) -> Curriculum:
        """The curriculum of a trainer after ``build``: the checkpoint's scores on resume, else computed."""
        import numpy as np

        cfg = trainer.cfg.train.curriculum
        state = (trainer.resume_state or {}).get("curriculum")
        if state is not None:
            scores = np.asarray(state["scores"], dtype=np.float64)
        else:
            scores = compute_scores(cfg, trainer)
        return cls(cfg, scores, trainer.cfg.train.epochs)

    def subset(self, epoch: int):
        """The training examples (a sorted-by-rank index tensor) of ``epoch``."""
        import torch

        size = subset_size(fraction_at(self.cfg, epoch, self.epochs), len(self.order))
        return torch.from_numpy(self.order[:size].copy())

    def state_dict(self) -> dict:
        """What a checkpoint keeps: the scores (a tensor, accepted by a weights-only load)."""
        import torch

        return {"scores": torch.from_numpy(self.scores.copy())}

    def describe(self) -> dict:
        """For summary.json: the settings and the fraction trained at each epoch."""
        fractions = [round(fraction_at(self.cfg, e, self.epochs), 6) for e in range(1, self.epochs + 1)]
        return {
            "order": self.cfg.order,
            "pacing": self.cfg.pacing,
            "start": self.cfg.start,
            "until_epoch": self.cfg.until_epoch or self.epochs,
            "examples": len(self.order),
            "fractions": fractions,
        }


def compute_scores(cfg: CurriculumConfig, trainer):
    """The difficulty of each training example (float64 numpy array) for a new run."""
    import numpy as np

    x, y = trainer.splits["train"]
    n_train = len(y)
    index = getattr(trainer, "train_index", None)
    if cfg.order == "random":
        return np.random.default_rng([int(trainer.cfg.seed), 0x5EED]).permutation(n_train).astype(np.float64)
    score = cfg.score
    task = getattr(trainer.cfg.train, "task", "classification")
    if score.run and task != "classification":
        raise ConfigError(
            f"scores from a run's loss or confidence need a classification task, not {task}",
            hint="give the scores as an array: score: {array: scores.npy}",
            where="train.curriculum.score.run",
        )
    if score.run:
        what = f"the scores of run '{score.run}'"
        values = model_scores(score.run, score.by, x, y, trainer.device)
        return check_scores(values, n_train, None, what)
    if score.array:
        raw, what = array_scores(score.array), f"score file '{score.array}'"
    else:
        raw, what = column_scores(trainer.cfg.data, score.column), f"column '{score.column}'"
    n_source = getattr(trainer, "source_examples", None) if index is not None else None
    values = check_scores(raw, n_train, n_source, what)
    if len(values) != n_train:  # one per source example: the training split's own
        values = values[np.asarray(index, dtype=np.int64)]
    return values


def data_positions(data) -> tuple:
    """``(train_index, source_examples)`` of a ``PreparedData``: where each training example is among the
    source's examples, and how many the source has (None, None when the data does not say)."""
    return getattr(data, "train_index", None), getattr(data, "source_examples", None)
