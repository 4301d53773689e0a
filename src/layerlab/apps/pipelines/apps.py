"""App config of layerlab.apps.pipelines."""

from django.apps import AppConfig


class PipelinesConfig(AppConfig):
    name = "layerlab.apps.pipelines"
    label = "pipelines"
    verbose_name = "Pipelines"
