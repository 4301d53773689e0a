"""The new-run page's pickers: a data section from the dataset picker, a model section from preset or spec."""

from __future__ import annotations

from layerlab.apps.datasets.access import dataset_check_readable
from layerlab.apps.datasets.models import Dataset
from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.core.errors import ConfigError
from layerlab.core.ids import parse_id

BUILTIN = ("spiral", "digits", "mnist", "not-so-clevr")


def data_choice(*, user, value: str) -> tuple[dict, Dataset | None]:
    """The ``data`` section and saved dataset of a picker value: ``builtin:spiral`` or ``dataset:<id>``.

    Args:
        user: whose datasets may be picked (others are "not found", like the API).
        value: the picker's value.
    """
    kind, _, rest = (value or "").partition(":")
    if kind == "builtin" and rest in BUILTIN:
        return {"source": rest}, None
    if kind == "dataset" and parse_id(rest) is not None:
        dataset = dataset_list_visible(user=user).filter(id=parse_id(rest)).first()
        if dataset is not None:
            dataset_check_readable(dataset)  # a folder whose grant was taken back is not read
            return dict(dataset.data), dataset
    raise ConfigError(f"dataset '{value}' not found", hint="pick one from the list", where="dataset")


def model_section(*, preset: str = "", spec: dict | None = None) -> dict:
    """The experiment's ``model`` section: the written layers win over the preset."""
    if spec:
        return {"layers": spec["layers"]}
    return {"preset": preset or "mlp"}
