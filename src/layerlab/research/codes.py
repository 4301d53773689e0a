"""CNN codes (CS231n, transfer learning): a trained network's activations as features for a linear classifier.

``extract_codes`` reads one layer's activations with a forward hook (by default the *input* of the last
linear layer: the "CNN codes"; a named layer gives that layer's output, flattened). ``fit_linear``
standardizes the features and fits scikit-learn's ``LinearSVC`` or ``LogisticRegression`` with C chosen
by stratified cross-validation on the training split only; convergence warnings are caught, the solver
retried with more iterations, and any left are counted in the metrics (never hidden).

The probes registered here (``codes_linear``, ``codes_fewshot``) are the non-training trials of the
``codes`` experiment (research/kinds/codes.py): they read the new data set's splits with
``prepare_data``, renormalize them to the statistics the source network was trained with, and return
JSON-able metrics.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch

from layerlab.core.configtree import from_mapping
from layerlab.core.errors import ConfigError
from layerlab.research.base import TrialResult
from layerlab.research.probes import register_probe

BATCH = 256
MAX_ITER = 5000  # the solvers' iteration cap; doubled twice while a fit warns of non-convergence
FEATURES = ("codes", "earlier", "pixels", "random")


def layer_names(model: torch.nn.Module) -> list[str]:
    """The network's layers as the spec names them (its top-level sub-modules)."""
    return [name for name, _ in model.named_children()]


def _missing_layer(name: str, model: torch.nn.Module, where: str) -> ConfigError:
    from layerlab.core.configtree import suggest

    names = layer_names(model)
    close = suggest(name, names)
    hint = (f"did you mean '{close}'? " if close else "") + f"layers: {', '.join(names)}"
    return ConfigError(f"the network has no layer '{name}'", hint=hint, where=where)


def resolve_layer(
    model: torch.nn.Module, layer: str | None, *, earlier: bool = False, where: str = "experiment.layer"
):
    """``(name, side)``: which layer's ``input`` or ``output`` gives the codes.

    ``layer`` given: that layer's output. None: the input of the last linear layer, or with
    ``earlier`` the input of the linear layer before it, else the output of the last pooling (or
    convolution) layer before the last linear one.
    """
    names = layer_names(model)
    children = dict(model.named_children())
    if layer:
        if layer not in children:
            raise _missing_layer(layer, model, where)
        return layer, "output"
    linear = [n for n in names if isinstance(children[n], torch.nn.Linear)]
    if not linear:
        raise ConfigError(
            "the network has no linear layer, so there is no default code layer",
            hint=f"name one: layers: {', '.join(names)}",
            where=where,
        )
    if not earlier:
        return linear[-1], "input"
    if len(linear) >= 2:
        return linear[-2], "input"
    before = names[: names.index(linear[-1])]
    for kinds in ((torch.nn.MaxPool2d, torch.nn.AvgPool2d), (torch.nn.Conv2d,)):
        found = [n for n in before if isinstance(children[n], kinds)]
        if len(found) >= 2:  # the block before the last one
            return found[-2], "output"
    raise ConfigError(
        "no earlier layer to take codes from by default",
        hint=f"name one with earlier_layer: layers: {', '.join(names)}",
        where=where,
    )


def extract_codes(model: torch.nn.Module, x, layer: str, side: str, *, batch: int = BATCH) -> np.ndarray:
    """The activations of ``layer`` (its ``input`` or ``output``) for every example of ``x``, flattened."""
    module = dict(model.named_children())[layer]
    captured: list[torch.Tensor] = []

    def keep(tensor: torch.Tensor) -> None:
        captured.append(tensor.detach().float().flatten(1).cpu())

    if side == "input":
        handle = module.register_forward_pre_hook(lambda _m, args: keep(args[0]))
    else:
        handle = module.register_forward_hook(lambda _m, _args, out: keep(out))
    model.eval()
    try:
        with torch.no_grad():
            for start in range(0, len(x), batch):
                model(x[start : start + batch])
    finally:
        handle.remove()
    return torch.cat(captured).numpy() if captured else np.zeros((0, 0), dtype=np.float32)


def _classifier(kind: str, max_iter: int, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if kind == "logistic":
        return LogisticRegression(max_iter=max_iter, random_state=seed)
    return LinearSVC(dual="auto", max_iter=max_iter, random_state=seed)


def fit_linear(x: np.ndarray, y: np.ndarray, *, classifier: str, Cs, folds: int, seed: int) -> dict:
    """A standardized linear classifier with C chosen by stratified k-fold CV on ``(x, y)``.

    Fewer examples per class than 2 folds need: no search, C = 1 (said in the result).

    Returns:
        ``{"model", "C", "cv_accuracy", "folds", "convergence_warnings", "max_iter"}``.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    smallest = int(np.bincount(y).min()) if len(y) else 0
    n_folds = min(int(folds), smallest)
    max_iter, left = MAX_ITER, 0
    for _attempt in range(3):
        pipe = Pipeline([("scale", StandardScaler()), ("clf", _classifier(classifier, max_iter, seed))])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            if n_folds >= 2:
                cv = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
                search = GridSearchCV(pipe, {"clf__C": list(Cs)}, cv=cv, n_jobs=1)
                search.fit(x, y)
                model, C, cv_accuracy = (
                    search.best_estimator_,
                    float(search.best_params_["clf__C"]),
                    float(search.best_score_),
                )
            else:
                pipe.set_params(clf__C=1.0)
                model, C, cv_accuracy = pipe.fit(x, y), 1.0, None
        left = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
        if not left:
            break
        max_iter *= 4
    return {
        "model": model,
        "C": C,
        "cv_accuracy": cv_accuracy,
        "folds": n_folds if n_folds >= 2 else 0,
        "convergence_warnings": left,
        "max_iter": max_iter,
    }


def accuracy(model, x: np.ndarray, y: np.ndarray) -> float | None:
    return float((model.predict(x) == y).mean()) if len(y) else None


# --- the new data set, readied for a source network ------------------------------------------------------


def target_splits(data: dict, seed: int) -> dict:
    """The new data set's splits as ``{"train"|"val"|"test": (x tensor, y numpy)}`` plus its preprocessing."""
    from layerlab.data.config import DataConfig
    from layerlab.data.prepare import prepare_data

    prepared = prepare_data(from_mapping(DataConfig, data, "data"), seed=seed)
    out = {"preprocessing": prepared.preprocessing, "classes": list(prepared.classes)}
    for split in ("train", "val", "test"):
        x = getattr(prepared, f"{split}_x")
        x = x.materialize() if hasattr(x, "materialize") else torch.as_tensor(x)
        out[split] = (x.float(), np.asarray(getattr(prepared, f"{split}_y"), dtype=np.int64))
    return out


def renormalize(x: torch.Tensor, ours, theirs: dict) -> torch.Tensor:
    """Inputs normalized with our statistics, normalized with a source run's instead (per channel)."""
    shape = (1, -1, *([1] * (x.ndim - 2)))
    mean_o, std_o = (torch.tensor(v, dtype=torch.float32).reshape(shape) for v in (ours.mean, ours.std))
    mean_t, std_t = (
        torch.tensor(v, dtype=torch.float32).reshape(shape) for v in (theirs["mean"], theirs["std"])
    )
    return ((x * std_o + mean_o) - mean_t) / std_t


def source_run(args: dict, inputs: Mapping[str, TrialResult]) -> Path:
    """The trained run the codes come from: a needed trial's run directory, or a path given."""
    key = args.get("source")
    if key:
        result = inputs.get(key)
        if result is None or result.run_dir is None:
            raise ConfigError(f"the source trial {key} left no run directory")
        return Path(result.run_dir)
    return Path(args["run"])


def _features(kind: str, args: dict, splits: dict, inputs: Mapping[str, TrialResult], seed: int) -> dict:
    """``{split: features}`` for ``codes`` / ``earlier`` / ``random`` codes of the source, or ``pixels``."""
    if kind == "pixels":
        return {s: splits[s][0].flatten(1).numpy() for s in ("train", "val", "test")}
    from layerlab.inference.trained import load_trained
    from layerlab.train import adapters

    trained = load_trained(source_run(args, inputs))
    ours = tuple(int(d) for d in splits["train"][0].shape[1:])
    if list(ours) != [int(d) for d in trained.input_shape]:
        raise ConfigError(
            f"the source run takes inputs of shape {trained.input_shape}, the new data gives {list(ours)}",
            hint="decode the new data with the source's size and channels (data.size, data.channels)",
            where="data",
        )
    model = trained.model
    if kind == "random":  # the same architecture, freshly initialized (seeded)
        torch.manual_seed(seed)
        model = adapters.network_from_dict(trained.network).eval()
    layer = args.get("earlier_layer") if kind == "earlier" else args.get("layer")
    where = "experiment.earlier_layer" if kind == "earlier" else "experiment.layer"
    name, side = resolve_layer(model, layer, earlier=kind == "earlier", where=where)
    out = {"layer": name, "side": side}
    for split in ("train", "val", "test"):
        x = renormalize(splits[split][0], splits["preprocessing"], trained.preprocessing)
        out[split] = extract_codes(model, x, name, side)
    return out


@register_probe("codes_linear")
def codes_linear(args: dict, inputs: Mapping[str, TrialResult], run_dir: Path, seed: int) -> dict:
    """Features (``args["features"]``: codes, earlier, random or pixels) + a linear classifier with CV'd C."""
    kind = args.get("features", "codes")
    if kind not in FEATURES:
        raise ConfigError(f"unknown features '{kind}'", hint=f"choose one of: {', '.join(FEATURES)}")
    splits = target_splits(args["data"], int(args.get("data_seed", seed)))
    features = _features(kind, args, splits, inputs, seed)
    y_train = splits["train"][1]
    fit = fit_linear(
        features["train"],
        y_train,
        classifier=args.get("classifier", "svm"),
        Cs=args["Cs"],
        folds=args["folds"],
        seed=seed,
    )
    return {
        "features": kind,
        "layer": features.get("layer"),
        "side": features.get("side"),
        "dimensions": int(features["train"].shape[1]),
        "train_examples": int(len(y_train)),
        "classes": splits["classes"],
        "train_accuracy": accuracy(fit["model"], features["train"], y_train),
        "val_accuracy": accuracy(fit["model"], features["val"], splits["val"][1]),
        "test_accuracy": accuracy(fit["model"], features["test"], splits["test"][1]),
        "C": fit["C"],
        "cv_accuracy": fit["cv_accuracy"],
        "folds": fit["folds"],
        "convergence_warnings": fit["convergence_warnings"],
        "max_iter": fit["max_iter"],
        "classifier": args.get("classifier", "svm"),
    }


def draw_per_class(y: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` examples of each class (all of a class with fewer), drawn without replacement."""
    picks = [rng.permutation(np.flatnonzero(y == c))[:k] for c in np.unique(y)]
    return np.sort(np.concatenate(picks))


@register_probe("codes_fewshot")
def codes_fewshot(args: dict, inputs: Mapping[str, TrialResult], run_dir: Path, seed: int) -> dict:
    """Test accuracy with ``k`` training examples per class, over ``draws`` seeded draws, for codes and pixels."""
    k, draws = int(args["k"]), int(args["draws"])
    splits = target_splits(args["data"], int(args.get("data_seed", seed)))
    y_train, y_test = splits["train"][1], splits["test"][1]
    out: dict = {"k": k, "draws": draws, "available_per_class": int(np.bincount(y_train).min())}
    for kind in args.get("compare", ["codes", "pixels"]):
        features = _features(kind, args, splits, inputs, seed)
        scores, warned = [], 0
        for draw in range(draws):
            index = draw_per_class(y_train, k, np.random.default_rng([seed, k, draw]))
            fit = fit_linear(
                features["train"][index], y_train[index], classifier=args.get("classifier", "svm"),
                Cs=args["Cs"], folds=args["folds"], seed=seed + draw,
            )  # fmt: skip
            scores.append(accuracy(fit["model"], features["test"], y_test))
            warned += fit["convergence_warnings"]
        out[kind] = scores
        out[f"{kind}_convergence_warnings"] = warned
    return out
