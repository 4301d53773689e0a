"""The new-run form filled in from an earlier run (``/runs/new/?from=<id>&lr=<value>``): run it again."""

from __future__ import annotations

import json

from layerlab.apps.runs import services
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.configtree import flatten
from layerlab.core.errors import LayerlabError
from layerlab.core.ids import id_param
from layerlab.web import shapecheck

FORM_KEYS = {"name", "train.epochs", "train.lr", "train.batch_size", "model.preset", "model.layers"}


def _value_text(value) -> str:
    """A config value as the text after ``=`` of a ``key.path=value`` line (read back as YAML)."""
    if isinstance(value, str) and value and value.replace("_", "").replace("-", "").isalnum():
        return value
    return json.dumps(value)


def _override_lines(run: Run, initial: dict, user) -> str:
    """The run's settings the form's own fields do not carry, as ``key.path=value`` lines."""
    model = {"layers": json.loads(initial["spec"])["layers"]} if initial.get("spec") else {}
    try:
        section, dataset = shapecheck.data_choice(user=user, value=initial.get("dataset", ""))
        base = services.config_resolve(
            {
                "data": section,
                "model": model or {"preset": initial.get("preset") or "mlp"},
                "train": {k: initial[k] for k in ("epochs", "lr", "batch_size") if k in initial},
            },
            network=None,
            dataset=dataset,
        )
    except LayerlabError:
        return ""
    ours, theirs = flatten(base), flatten(run.config)
    return "\n".join(
        f"{key}={_value_text(value)}"
        for key, value in theirs.items()
        if key not in FORM_KEYS and ours.get(key) != value
    )


def lower_lr(lr) -> float | None:
    """The learning rate to try after a divergence: a tenth."""
    return float(f"{lr / 10:.3g}") if isinstance(lr, int | float) and lr > 0 else None


def initial_from_run(*, user, params) -> dict:
    """Initial values of the new-run form from ``?from=<run id>`` (a run the user may see) and ``?lr=``.

    Args:
        user: the signed-in user (an invisible or unknown run gives an empty form, as a 404 would).
        params: the request's GET mapping.
    """
    run_id = id_param(params, "from")
    run = run_list_visible(user=user).filter(id=run_id).first() if run_id is not None else None
    if run is None:
        return {}
    config = run.config or {}
    data, model, train = (config.get(k) or {} for k in ("data", "model", "train"))
    initial: dict = {"project": run.project_id, "name": f"{run.name or f'run {run.id}'} again"[:200]}
    if run.dataset_id:
        initial["dataset"] = f"dataset:{run.dataset_id}"
    elif data.get("source") in shapecheck.BUILTIN:
        initial["dataset"] = f"builtin:{data['source']}"
    if model.get("layers"):
        initial["spec"] = json.dumps({"layers": model["layers"]})
    elif model.get("preset"):
        initial["preset"] = model["preset"]
    initial.update({k: train[k] for k in ("epochs", "lr", "batch_size") if k in train})
    initial["tags"] = ", ".join(run.tags.values_list("name", flat=True))
    try:
        lr = float(params.get("lr", ""))
    except ValueError:
        lr = None
    if lr is not None and 0 < lr <= 10:
        initial["lr"] = lr
    if "dataset" in initial:
        initial["overrides"] = _override_lines(run, initial, user)
    return initial
