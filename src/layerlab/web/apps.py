"""App config of layerlab.web (the dashboard pages)."""

from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "layerlab.web"
    label = "web"
    verbose_name = "Dashboard"
