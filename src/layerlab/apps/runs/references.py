"""Paths a run config names on the server, checked for the user: data, spec files, ``model.init_from``.

``model.init_from`` names a run of the lab, never a server path (superusers excepted)::

    run:12                   its best checkpoint, else its last one
    run:12/checkpoint:best   the same
    run:12/checkpoint:last   its last checkpoint
    run:12/checkpoint:340    one recorded checkpoint (its id in the run's ``checkpoints``)

A run the user may not see answers exactly like a run that does not exist. The config keeps the
reference; the worker turns it into a local checkpoint file just before the engine reads it.
"""

from __future__ import annotations

import re

from layerlab.apps.datasets.access import config_data_check, is_superuser, spec_file_check
from layerlab.apps.runs.files import run_checkpoint_local, run_file_local
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.core.errors import ConfigError
from layerlab.core.runlayout import CHECKPOINT_DIR, LAST

REFERENCE = re.compile(r"^run:(\d+)(?:/checkpoint:(best|last|\d+))?$")


def init_from_error(value) -> ConfigError:
    """The one answer for a reference that cannot be used: missing and invisible read the same."""
    shown = value if isinstance(value, str) and REFERENCE.match(value.strip()) else "this value"
    return ConfigError(
        f"{shown} is not a run with weights that you may see",
        hint="name a run of the lab: 'run:<id>' or 'run:<id>/checkpoint:best|last|<checkpoint id>'",
        where="model.init_from",
    )


def init_from_parse(value: str) -> tuple[int, str] | None:
    """``(run id, checkpoint)`` of a reference (checkpoint ``best``, ``last`` or an id), else None."""
    match = REFERENCE.match(str(value).strip())
    if match is None:
        return None
    return int(match.group(1)), match.group(2) or "best"


def init_from_check(*, value, user) -> str | None:
    """The checked ``model.init_from`` (normalised reference, or a path for superusers)."""
    if value in (None, ""):
        return None
    parsed = init_from_parse(value) if isinstance(value, str) else None
    if parsed is None:
        if is_superuser(user) and isinstance(value, str):
            return value  # the engine's own form (a run directory or a checkpoint file)
        raise init_from_error(value)
    run_id, checkpoint = parsed
    run = run_list_visible(user=user).filter(id=run_id).first()
    if run is None:
        raise init_from_error(value)
    if run.origin != Run.Origin.SERVER and not is_superuser(user):
        raise ConfigError(
            f"run {run.id} was trained outside the lab; its weights are not here", where="model.init_from"
        )
    if checkpoint.isdigit() and not run.checkpoints.filter(id=int(checkpoint)).exists():
        raise ConfigError(f"run {run.id} has no checkpoint {checkpoint}", where="model.init_from")
    return f"run:{run.id}" if checkpoint == "best" else f"run:{run.id}/checkpoint:{checkpoint}"


def init_from_local(*, run: Run, value: str | None) -> str | None:
    """On the worker: the local checkpoint file of ``run``'s ``model.init_from``, checked again for its creator.

    Runs fine-tuned before references existed stored the parent's run directory; that still means the parent.
    """
    if not value:
        return value
    user = run.created_by
    parsed = init_from_parse(value)
    if parsed is None and run.parent_id and value == run.parent.run_dir:
        parsed = (run.parent_id, "best")
    if parsed is None:
        if is_superuser(user):
            return value
        raise init_from_error(value)
    source = run_list_visible(user=user).filter(id=parsed[0]).first() if user is not None else None
    if source is None:
        raise init_from_error(value)
    checkpoint = parsed[1]
    if checkpoint == "best":
        return str(run_checkpoint_local(run=source))
    if checkpoint == "last":
        return str(run_file_local(run=source, relative=f"{CHECKPOINT_DIR}/{LAST}"))
    recorded = source.checkpoints.filter(id=int(checkpoint)).first()
    if recorded is None:
        raise init_from_error(value)
    return str(run_file_local(run=source, relative=recorded.path))


def config_paths_check(*, cfg, user, project, dataset=None) -> None:
    """Check everything a resolved config would read on the server, before anything is read.

    Args:
        cfg: the ``ExperimentConfig`` (after overrides).
        dataset: the saved dataset the run is bound to (its own path is allowed).
    """
    import dataclasses

    config_data_check(data=dataclasses.asdict(cfg.data), user=user, project=project, dataset=dataset)
    spec_file_check(preset=cfg.model.preset, user=user)
    cfg.model.init_from = init_from_check(value=cfg.model.init_from, user=user)
    score = cfg.train.curriculum.score if cfg.train.curriculum is not None else None
    if score is not None:
        score.run = _as_score_error(init_from_check, value=score.run, user=user)
        score_array_check(value=score.array, user=user)


SCORE_RUN = "train.curriculum.score.run"


def _as_score_error(check, **kwargs):
    """``check(**kwargs)`` whose errors name ``train.curriculum.score.run`` (the same rules as init_from)."""
    try:
        return check(**kwargs)
    except ConfigError as exc:
        message = exc.message.replace("model.init_from", SCORE_RUN)
        raise ConfigError(message, hint=exc.hint, where=SCORE_RUN) from None


def score_array_check(*, value, user) -> None:
    """A curriculum score file is a path on the server: refused like a data path (superusers excepted)."""
    if value and not is_superuser(user):
        raise ConfigError(
            "a score file is a path on the server, which a run of the lab may not read",
            hint="score the examples with an earlier run instead: score: {run: 'run:<id>', by: loss}",
            where="train.curriculum.score.array",
        )


def config_public(run: Run) -> dict:
    """The run's config as users see it: an upload's path as its dataset's name, init_from as a reference."""
    import copy

    from layerlab.apps.datasets.access import data_section_public

    config = copy.deepcopy(run.config or {})
    if isinstance(config.get("data"), dict):
        config["data"] = data_section_public(config["data"], dataset=run.dataset)
    model = config.get("model")
    init = model.get("init_from") if isinstance(model, dict) else None
    if init and init_from_parse(init) is None and run.parent_id and init == run.parent.run_dir:
        model["init_from"] = f"run:{run.parent_id}"  # fine-tunes recorded before references
    return config


def run_config_check(*, run: Run, mapping: dict) -> dict:
    """On the worker, before the engine opens anything: the config's paths checked again for the run's creator
    (a grant may have been taken back), and ``model.init_from`` made a local checkpoint file."""
    from layerlab.apps.datasets.access import config_data_check

    user = run.created_by
    data = mapping.get("data") or {}
    if data.get("path"):
        config_data_check(data=data, user=user, project=run.project, dataset=run.dataset)
    model = mapping.get("model") or {}
    spec_file_check(preset=model.get("preset"), user=user)
    if model.get("init_from"):
        model["init_from"] = init_from_local(run=run, value=model["init_from"])
    score = ((mapping.get("train") or {}).get("curriculum") or {}).get("score") or {}
    if score.get("run"):  # the scoring run's checkpoint, as a local file
        score["run"] = _as_score_error(init_from_local, run=run, value=score["run"])
    score_array_check(value=score.get("array"), user=user)
    return mapping


def run_error_text(run: Run, text: str) -> str:
    """A failure message of a run without server paths (the data path reads as the dataset's name)."""
    from layerlab.apps.datasets.access import message_redact

    path = ((run.config or {}).get("data") or {}).get("path")
    label = f"dataset '{run.dataset.name}'" if run.dataset_id and run.dataset else "the data"
    return message_redact(text, paths=[path], label=label)


def summary_source(run: Run) -> str:
    """What the run was initialised from, as users name it (the engine records the local file)."""
    value = ((config_public(run).get("model") or {}).get("init_from")) or ""
    return value if init_from_parse(value) is not None else "a checkpoint file"


def summary_public(run: Run) -> dict:
    """The engine's summary without server paths: the data source by dataset, init_from by reference."""
    summary = dict(run.summary or {})
    init = summary.get("init_from")
    if isinstance(init, dict) and init.get("source"):
        summary["init_from"] = {**init, "source": summary_source(run)}
    report = summary.get("data_report")
    if isinstance(report, dict) and isinstance(report.get("source"), str):
        from layerlab.apps.datasets.access import message_redact

        path = ((run.config or {}).get("data") or {}).get("path")
        label = run.dataset.name if run.dataset_id and run.dataset else "data"
        summary["data_report"] = {
            **report,
            "source": message_redact(report["source"], paths=[path], label=label),
        }
    return summary


def run_data_check(run: Run) -> None:
    """Before the server reads a finished run's data again (its test examples): the path allowed for its creator.

    Runs of ``layerlab train`` were made on this machine by someone who reads its files anyway; a
    script's logged config (``origin: client``) names files of another machine and is never read.
    """
    from layerlab.apps.datasets.access import config_data_check

    if run.origin == Run.Origin.CLI:
        return
    data = (run.config or {}).get("data") or {}
    config_data_check(data=data, user=run.created_by, project=run.project, dataset=run.dataset)
