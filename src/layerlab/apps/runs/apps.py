"""App config of layerlab.apps.runs."""

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "layerlab.apps.runs"
    label = "runs"
    verbose_name = "Runs"
