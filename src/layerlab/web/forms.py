"""Dashboard forms: input checked at the edge (field and reason), then handed to one service."""

from __future__ import annotations

import json

from django import forms

from layerlab.apps.projects.models import Project


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
        self.fields["project"].queryset = Project.objects.filter(id__in=[p.id for p in projects])


class NewRunForm(ProjectChoiceForm):
    name = forms.CharField(max_length=200, required=False)
    dataset = forms.CharField(max_length=50, help_text="a built-in source or a saved dataset")
    preset = forms.CharField(max_length=100, required=False)
    spec = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}))
    epochs = forms.IntegerField(min_value=1, max_value=100_000, initial=10)
    lr = forms.FloatField(min_value=0, max_value=10, initial=0.01, label="Learning rate")
    batch_size = forms.IntegerField(min_value=1, max_value=65_536, initial=64)
    overrides = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

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

    def clean(self):
        data = super().clean()
        if not data.get("preset") and not data.get("spec"):
            raise forms.ValidationError("choose a preset or write a spec")
        return data


class UploadForm(ProjectChoiceForm):
    name = forms.CharField(max_length=200)
    file = forms.FileField(help_text="a .zip of one folder per class, an .npz or a .csv")
    size = forms.IntegerField(
        min_value=4, max_value=1024, required=False, help_text="resize images to size x size (optional)"
    )


class PredictForm(LineForm):
    image = forms.FileField()


class EntryForm(ProjectChoiceForm):
    title = forms.CharField(max_length=300)
    date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    run = forms.IntegerField(required=False, min_value=1, label="Run id (optional)")
    body = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 12}), help_text="markdown")


class ProjectForm(LineForm):
    name = forms.CharField(max_length=200)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))


class ShareForm(LineForm):
    group = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=[("viewer", "viewer"), ("editor", "editor")])
