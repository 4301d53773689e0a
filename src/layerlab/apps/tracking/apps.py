"""App config of layerlab.apps.tracking: no models, only the MLflow protocol's views over runs."""

from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "layerlab.apps.tracking"
    label = "tracking"
    verbose_name = "MLflow tracking"
