"""A pipeline file read and checked: stages, their inputs, the order they run in and each one's identity.

No Django and no Luigi here: a file that names an unknown or circular stage is refused before
anything is created. A stage's identity is the hash of its resolved settings and of its inputs'
identities, so changing one stage changes it and every stage that depends on it, and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from layerlab.core.errors import ConfigError

# kind -> (fields naming one input stage, fields naming a list of input stages)
KINDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "dataset": ((), ()),
    "train": (("dataset",), ()),
    "finetune": (("from", "dataset"), ()),
    "evaluate": (("run",), ()),
    "export": (("run",), ()),
    "sweep": (("dataset",), ()),
    "report": ((), ("inputs",)),
}
# what an input field must point at
INPUT_KINDS = {
    "dataset": ("dataset",),
    "from": ("train", "finetune", "sweep"),
    "run": ("train", "finetune", "sweep"),
}
OPTIONS = {
    "dataset": {"data", "name"},
    "train": {"config", "overrides", "timeout", "name"},
    "finetune": {"config", "overrides", "timeout", "name"},
    "evaluate": {"data"},
    "export": {"format"},
    "sweep": {"config", "sweep", "overrides", "timeout", "name"},
    "report": {"title"},
}
EXPORT_FORMATS = ("onnx", "torchscript", "safetensors")
ALIASES = {"fine-tune": "finetune", "fine_tune": "finetune", "import": "dataset", "experiment": "train"}


@dataclass(frozen=True)
class Stage:
    """One stage as declared, with the names of the stages it reads."""

    name: str
    kind: str
    options: dict
    inputs: dict[str, str | list[str]]  # field -> stage name(s)
    after: tuple[str, ...] = ()  # extra ordering without data
    identity: str = ""

    @property
    def requires(self) -> list[str]:
        names: list[str] = []
        for value in self.inputs.values():
            names.extend([value] if isinstance(value, str) else value)
        names.extend(self.after)
        return list(dict.fromkeys(names))


@dataclass(frozen=True)
class Pipeline:
    """A checked pipeline: its name, project and stages in an order where inputs come first."""

    name: str
    project: str
    stages: dict[str, Stage] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "project": self.project,
            "stages": {
                s.name: {
                    "kind": s.kind,
                    "options": s.options,
                    "inputs": s.inputs,
                    "after": list(s.after),
                    "identity": s.identity,
                }
                for s in self.stages.values()
            },
        }

    @classmethod
    def from_dict(cls, data: dict) -> Pipeline:
        stages = {
            name: Stage(
                name=name,
                kind=s["kind"],
                options=s["options"],
                inputs=s["inputs"],
                after=tuple(s.get("after") or ()),
                identity=s["identity"],
            )
            for name, s in data["stages"].items()
        }
        return cls(name=data["name"], project=data["project"], stages=stages)


def canonical(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def identity_of(*, project: str, kind: str, options: dict, inputs: dict, input_ids: dict[str, str]) -> str:
    """The stage's identity: a hash of its resolved settings and of its inputs' identities."""
    resolved = {
        "project": project,
        "kind": kind,
        "options": options,
        "inputs": {
            key: ([input_ids[v] for v in value] if isinstance(value, list) else input_ids[value])
            for key, value in sorted(inputs.items())
        },
    }
    return hashlib.sha256(canonical(resolved).encode()).hexdigest()[:20]


def closest(name: str, names) -> str:
    import difflib

    match = difflib.get_close_matches(name, list(names), n=1)
    return f"; did you mean '{match[0]}'?" if match else ""


def stage_parse(name: str, raw) -> Stage:
    where = f"stages.{name}"
    if not isinstance(raw, dict):
        raise ConfigError("a stage is a mapping with a 'kind'", where=where)
    kind = str(raw.get("kind", "")).strip().lower()
    kind = ALIASES.get(kind, kind)
    if kind not in KINDS:
        raise ConfigError(
            f"unknown stage kind '{raw.get('kind')}'",
            hint=f"use one of {', '.join(KINDS)}",
            where=f"{where}.kind",
        )
    single, many = KINDS[kind]
    inputs: dict[str, str | list[str]] = {}
    options: dict = {}
    after: tuple[str, ...] = ()
    for key, value in raw.items():
        if key == "kind":
            continue
        if key in single:
            if not isinstance(value, str) or not value:
                raise ConfigError("names one earlier stage", where=f"{where}.{key}")
            inputs[key] = value
        elif key in many or key == "after":
            values = [value] if isinstance(value, str) else value
            if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
                raise ConfigError("names a list of earlier stages", where=f"{where}.{key}")
            if key == "after":
                after = tuple(values)
            else:
                inputs[key] = list(values)
        elif key in OPTIONS[kind]:
            options[key] = value
        else:
            known = sorted({*single, *many, *OPTIONS[kind], "after", "kind"})
            raise ConfigError(
                f"unknown key '{key}' for a {kind} stage{closest(key, known)}",
                hint=f"a {kind} stage takes {', '.join(known)}",
                where=where,
            )
    stage_options_check(name, kind, options, inputs)
    return Stage(name=name, kind=kind, options=options, inputs=inputs, after=after)


def stage_options_check(name: str, kind: str, options: dict, inputs: dict) -> None:
    where = f"stages.{name}"
    if kind == "dataset" and not isinstance(options.get("data"), dict):
        raise ConfigError("a dataset stage needs a 'data' mapping (source, size ...)", where=f"{where}.data")
    if kind == "evaluate" and not isinstance(options.get("data"), dict):
        raise ConfigError("an evaluate stage needs the 'data' to evaluate on", where=f"{where}.data")
    if kind in ("evaluate", "export") and "run" not in inputs:
        raise ConfigError(f"an {kind} stage needs 'run': the train or finetune stage it reads", where=where)
    if kind == "finetune" and "from" not in inputs:
        raise ConfigError("a finetune stage needs 'from': the stage it starts from", where=where)
    if kind in ("train", "finetune", "sweep") and not isinstance(options.get("config", {}), dict):
        raise ConfigError("is an experiment config mapping", where=f"{where}.config")
    if kind == "export":
        fmt = options.setdefault("format", "onnx")
        if fmt not in EXPORT_FORMATS:
            raise ConfigError(
                f"unknown export format '{fmt}'",
                hint=f"use {', '.join(EXPORT_FORMATS)}",
                where=f"{where}.format",
            )
    overrides = options.get("overrides", [])
    if not isinstance(overrides, list) or not all(isinstance(o, str) for o in overrides):
        raise ConfigError("is a list of 'key.path=value' edits", where=f"{where}.overrides")


def order(stages: dict[str, Stage]) -> list[str]:
    """Stage names with every stage after its inputs; unknown and circular inputs are one clear error."""
    for stage in stages.values():
        for field_name, value in [*stage.inputs.items(), *(("after", a) for a in stage.after)]:
            for needed in [value] if isinstance(value, str) else value:
                if needed not in stages:
                    raise ConfigError(
                        f"depends on unknown stage '{needed}'{closest(needed, stages)}",
                        where=f"stages.{stage.name}.{field_name}",
                    )
                wanted = INPUT_KINDS.get(field_name)
                if wanted and stages[needed].kind not in wanted:
                    raise ConfigError(
                        f"'{needed}' is a {stages[needed].kind} stage; this needs a {' or '.join(wanted)} stage",
                        where=f"stages.{stage.name}.{field_name}",
                    )
    done: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = path[path.index(name) :] + [name]
            raise ConfigError(f"circular dependency: {' -> '.join(cycle)}", where=f"stages.{name}")
        state[name] = "open"
        for needed in stages[name].requires:
            visit(needed, [*path, name])
        state[name] = "done"
        done.append(name)

    for name in stages:
        visit(name, [])
    return done


def pipeline_parse(data, *, default_name: str = "pipeline", project: str | None = None) -> Pipeline:
    """Check a pipeline mapping and resolve each stage's identity.

    Args:
        data: the file's mapping: ``name``, ``project``, ``stages`` (name -> stage).
        default_name: the pipeline's name when the file gives none (the file's stem).
        project: a project that replaces the file's (``--project``).
    """
    if not isinstance(data, dict):
        raise ConfigError("a pipeline file is a mapping with 'stages'")
    unknown = set(data) - {"name", "project", "stages", "description"}
    if unknown:
        key = sorted(unknown)[0]
        raise ConfigError(
            f"unknown key '{key}'{closest(key, ['name', 'project', 'stages'])}",
            hint="a pipeline file has name, project, description and stages",
        )
    raw_stages = data.get("stages")
    if not isinstance(raw_stages, dict) or not raw_stages:
        raise ConfigError("a pipeline needs at least one stage", where="stages")
    name = str(data.get("name") or default_name)
    project_name = str(project or data.get("project") or "local")
    stages = {str(n): stage_parse(str(n), raw) for n, raw in raw_stages.items()}
    resolved: dict[str, Stage] = {}
    for stage_name in order(stages):
        stage = stages[stage_name]
        ids = {n: resolved[n].identity for n in stage.requires}
        identity = identity_of(
            project=project_name, kind=stage.kind, options=stage.options, inputs=stage.inputs, input_ids=ids
        )
        if stage.after:
            identity = hashlib.sha256(
                (identity + canonical([ids[a] for a in stage.after])).encode()
            ).hexdigest()[:20]
        resolved[stage_name] = Stage(
            name=stage.name,
            kind=stage.kind,
            options=stage.options,
            inputs=stage.inputs,
            after=stage.after,
            identity=identity,
        )
    return Pipeline(name=name, project=project_name, stages=resolved)


def pipeline_load(path: str | Path, *, project: str | None = None) -> Pipeline:
    """Read and check a pipeline YAML (or JSON) file; errors name the file as the user gave it."""
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"pipeline file '{path}' does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read pipeline file '{path}': {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"pipeline file '{path}' is not valid YAML{where}") from None
    return pipeline_parse(data, default_name=path.stem, project=project)
