"""Dashboard forms: input checked at the edge (field and reason), then handed to one service."""

from __future__ import annotations

import json
import re

from django import forms

from layerlab.apps.journal.services import IMAGE_MAX_BYTES, IMAGE_MAX_PIXELS
from layerlab.apps.projects.models import Project
from layerlab.apps.runs.services import config_defaults
from layerlab.apps.runs.tags import tags_clean
from layerlab.core.errors import LayerlabError


class LineForm(forms.Form):
    def __init__(self, *args, **kwargs):
        # Labels read "Name", not "Name:", like the hand-written ones (a class attribute is overwritten).
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    def errors_line(self) -> str:
        """Every field error as one line: ``field: reason; ...``."""
        return "; ".join(f"{field}: {' '.join(errs)}" for field, errs in self.errors.items())


def override_lines(text: str) -> list[str]:
    """``key.path=value`` lines (blank lines skipped); a line without ``=`` is refused by name."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if "=" not in line:
            raise forms.ValidationError(f"'{line}' is not key.path=value (e.g. train.lr=0.001)")
    return lines


def clean_tags_field(text: str) -> list[str]:
    """Comma-separated tags, checked like the API's (``runs.tags``)."""
    try:
        return tags_clean(text)
    except LayerlabError as exc:
        raise forms.ValidationError(f"{exc.message}; {exc.hint}") from None


class TagsForm(LineForm):
    """The run page's tag editor: the whole list, comma-separated."""

    tags = forms.CharField(max_length=1000, required=False)

    def clean_tags(self):
        return clean_tags_field(self.cleaned_data["tags"])


class RenameForm(LineForm):
    name = forms.CharField(max_length=200, required=False)


class FinetuneForm(LineForm):
    name = forms.CharField(max_length=200, required=False)
    overrides = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_overrides(self):
        return override_lines(self.cleaned_data["overrides"])


class ExportForm(LineForm):
    format = forms.ChoiceField(choices=[(f, f) for f in ("safetensors", "torchscript", "onnx")])


class ProjectChoiceForm(LineForm):
    """A form with a project picked among the ones given (those where the user may write)."""

    project = forms.ModelChoiceField(queryset=Project.objects.none())

    def __init__(self, *args, projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        projects = list(projects)
        self.fields["project"].queryset = Project.objects.filter(id__in=[p.id for p in projects])
        if len(projects) == 1 and not self.initial.get("project"):
            self.initial["project"] = projects[0].id  # the only choice is chosen


class NewRunForm(ProjectChoiceForm):
    name = forms.CharField(max_length=200, required=False)
    dataset = forms.CharField(max_length=50, help_text="a built-in source or a saved dataset")
    preset = forms.CharField(max_length=100, required=False)
    spec = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}))
    # Initial values are the engine's defaults (``__init__``), so the form and ``layerlab train`` agree.
    epochs = forms.IntegerField(min_value=1, max_value=100_000)
    lr = forms.FloatField(min_value=0, max_value=10, label="Learning rate")
    batch_size = forms.IntegerField(min_value=1, max_value=65_536)
    overrides = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    tags = forms.CharField(
        max_length=1000, required=False, help_text="comma-separated, e.g. baseline, small-lr"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        defaults = config_defaults()
        for name in ("epochs", "lr", "batch_size"):
            self.fields[name].initial = defaults[name]

    def clean_spec(self):
        text = self.cleaned_data["spec"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(f"not JSON: {exc}") from None
        if isinstance(value, list):
            value = {"layers": value}
        if not isinstance(value, dict) or "layers" not in value:
            raise forms.ValidationError('a spec is {"layers": [...]} or a list of layers')
        return value

    def clean_overrides(self):
        return override_lines(self.cleaned_data["overrides"])

    def clean_tags(self):
        return clean_tags_field(self.cleaned_data["tags"])

    def clean(self):
        data = super().clean()
        if not data.get("preset") and not data.get("spec"):
            raise forms.ValidationError("choose a preset or write a spec")
        return data


SPLIT_METHODS = [
    ("random", "random (stratified, seeded): examples are independent"),
    ("ordered", "ordered: the last files (by name) are held out; neighbouring photos stay together"),
    ("group", "group: every group (a pattern on the file name) stays on one side"),
]


class UploadForm(ProjectChoiceForm):
    name = forms.CharField(max_length=200)
    file = forms.FileField(help_text="a .zip of one folder per class, an .npz or a .csv")
    size = forms.IntegerField(
        min_value=4, max_value=1024, required=False, help_text="resize images to size x size (optional)"
    )
    channels = forms.TypedChoiceField(
        choices=[("", "as stored"), ("1", "1 (grayscale)"), ("3", "3 (RGB)")],
        coerce=int,
        empty_value=None,
        required=False,
        help_text="images are converted to this many channels",
    )
    split = forms.ChoiceField(choices=SPLIT_METHODS, initial="random", required=False, label="Split")
    group_pattern = forms.CharField(
        max_length=200,
        required=False,
        label="Group pattern (for the group split)",
        help_text=r"a regular expression whose first capture names the group, e.g. (\d+)_ for person 12 in 12_a.jpg",
    )
    # Not required: a form without them (a script, an old page) gets the engine's defaults, written down.
    val = forms.FloatField(min_value=0, max_value=0.9, required=False, label="Validation fraction")
    test = forms.FloatField(min_value=0, max_value=0.9, required=False, label="Test fraction")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.split_defaults = config_defaults()
        self.fields["val"].initial = self.split_defaults["split_val"]
        self.fields["test"].initial = self.split_defaults["split_test"]

    def clean_group_pattern(self):
        pattern = self.cleaned_data["group_pattern"].strip()
        if pattern:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise forms.ValidationError(f"not a valid regular expression: {exc}") from None
        return pattern

    def clean(self):
        data = super().clean()
        data["split"] = data.get("split") or "random"
        for name in ("val", "test"):
            if name in data and data[name] is None:
                data[name] = self.split_defaults[f"split_{name}"]
        if data.get("split") == "group" and not data.get("group_pattern"):
            self.add_error("group_pattern", "the group split needs a pattern")
        if data.get("val") is not None and data.get("test") is not None and data["val"] + data["test"] >= 1:
            self.add_error("test", "validation + test leave nothing to train on; keep them below 1")
        return data

    def data_options(self) -> dict:
        """The ``data`` section options this form chose (size, channels, split)."""
        data = self.cleaned_data
        options: dict = {}
        if data.get("size"):
            options["size"] = data["size"]
        if data.get("channels"):
            options["channels"] = data["channels"]
        split = {"method": data["split"], "val": data["val"], "test": data["test"]}
        if data["split"] == "group":
            split["group_pattern"] = data["group_pattern"]
        options["split"] = split
        return options


class PredictForm(LineForm):
    image = forms.FileField()


class EntryForm(ProjectChoiceForm):
    title = forms.CharField(max_length=300)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    run = forms.IntegerField(required=False, min_value=1, label="Run id (optional)")
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12}), help_text="markdown")
    image = forms.FileField(
        required=False,
        label="Add an image (optional)",
        help_text=f"PNG, JPEG, GIF or WebP, up to {IMAGE_MAX_BYTES // 2**20} MiB and "
        f"{IMAGE_MAX_PIXELS // 10**6} megapixels; its markdown is added to the text",
        widget=forms.FileInput(attrs={"accept": "image/png,image/jpeg,image/gif,image/webp"}),
    )


class ProjectForm(LineForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class ShareForm(LineForm):
    group = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=[("viewer", "viewer"), ("editor", "editor")])


class MemberForm(LineForm):
    """Share a project with a user (viewer, editor or owner) or a group (viewer or editor), by name."""

    kind = forms.ChoiceField(
        choices=[("user", "user"), ("group", "group")], initial="user", label="Share with"
    )
    name = forms.CharField(max_length=150)
    role = forms.ChoiceField(
        choices=[("viewer", "viewer (reads)"), ("editor", "editor (also runs and edits)"), ("owner", "owner (also shares and deletes)")]
    )  # fmt: skip

    def clean(self):
        data = super().clean()
        if data.get("kind") == "group" and data.get("role") == "owner":
            self.add_error("role", "a group can be viewer or editor; owners are users")
        return data


CONFIG_MAX_BYTES = 1024 * 1024  # an experiment config pasted or uploaded


class ExperimentForm(ProjectChoiceForm):
    """A new experiment: a config with an ``experiment:`` section, pasted or uploaded (YAML or JSON)."""

    name = forms.CharField(max_length=200, required=False)
    config = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
        help_text="YAML or JSON: data, model, train and an experiment: {kind: ...} section",
    )
    file = forms.FileField(required=False, help_text="or upload the config file (.yaml, .yml, .json)")
    overrides = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 2}), help_text="key.path=value, one a line"
    )

    def clean_overrides(self):
        return override_lines(self.cleaned_data["overrides"])

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        text = (data.get("config") or "").strip()
        if upload is not None:
            if upload.size > CONFIG_MAX_BYTES:
                raise forms.ValidationError(f"the config file may be {CONFIG_MAX_BYTES // 1024} KiB at most")
            try:
                text = upload.read().decode("utf-8")
            except UnicodeDecodeError:
                raise forms.ValidationError("the config file is not UTF-8 text (YAML or JSON)") from None
        if not text.strip():
            raise forms.ValidationError("paste a config or upload one")
        if len(text) > CONFIG_MAX_BYTES:
            raise forms.ValidationError(f"the config may be {CONFIG_MAX_BYTES // 1024} KiB at most")
        data["config_text"] = text
        return data
