"""App config of layerlab.apps.datasets."""

from django.apps import AppConfig


class DatasetsConfig(AppConfig):
    name = "layerlab.apps.datasets"
    label = "datasets"
    verbose_name = "Datasets"

    def ready(self):
        from layerlab.apps.datasets.limits import decode_limits_install

        decode_limits_install()
