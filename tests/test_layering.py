"""The layering rules of docs/architecture.md, checked on the source text.

import-linter (run by `make lint`) checks the same contracts on the import graph; this test keeps
them in the plain test suite too, including imports hidden inside functions.
"""

import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "layerlab"
IMPORT = re.compile(r"^\s*(?:import|from)\s+([\w.]+)", re.MULTILINE)


def imported_roots(path: Path) -> set[str]:
    return {name.split(".")[0] for name in IMPORT.findall(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("package", ["core", "nn", "data", "train"])
def test_engine_never_imports_django(package):
    offenders = [
        str(p.relative_to(SRC))
        for p in (SRC / package).rglob("*.py")
        if imported_roots(p) & {"django", "rest_framework"}
    ]
    assert offenders == []


@pytest.mark.parametrize("module", ["nn/spec.py", "nn/shapes.py"])
def test_spec_and_shapes_stay_torch_free(module):
    path = SRC / module
    if not path.exists():
        pytest.skip(f"{module} not written yet")
    assert "torch" not in imported_roots(path)


def test_core_imports_only_the_standard_library_yaml_and_itself():
    allowed_third_party = {"yaml"}  # config files are YAML; PyYAML is the one exception
    for path in (SRC / "core").rglob("*.py"):
        for name in IMPORT.findall(path.read_text(encoding="utf-8")):
            root = name.split(".")[0]
            if root == "layerlab":
                assert name.startswith("layerlab.core"), f"{path.name} imports {name}"
            elif root not in allowed_third_party:
                assert root in __import__("sys").stdlib_module_names or root == "__future__", (
                    f"{path.name}: {root}"
                )


@pytest.mark.parametrize("package", ["core", "nn", "data", "train"])
def test_engine_never_imports_inference(package):
    offenders = [
        str(p.relative_to(SRC))
        for p in (SRC / package).rglob("*.py")
        if any(n.startswith("layerlab.inference") for n in IMPORT.findall(p.read_text(encoding="utf-8")))
    ]
    assert offenders == []


def test_inference_never_imports_django():
    offenders = [
        str(p.relative_to(SRC))
        for p in (SRC / "inference").rglob("*.py")
        if imported_roots(p) & {"django", "rest_framework"}
    ]
    assert offenders == []


RUN_FILE_LITERAL = re.compile(
    r"""["'](last\.ckpt|best\.ckpt|network\.json|config\.yaml|metrics\.jsonl|summary\.json)["']"""
)


def test_run_directory_names_are_spelled_only_in_core_runlayout():
    offenders = [
        f"{p.relative_to(SRC)}: {m.group(0)}"
        for p in [*SRC.rglob("*.py"), *SRC.rglob("*.html")]
        if p.relative_to(SRC).as_posix() != "core/runlayout.py"
        for m in RUN_FILE_LITERAL.finditer(p.read_text(encoding="utf-8"))
    ]
    assert offenders == []
