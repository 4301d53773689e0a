"""App config of layerlab.apps.networks."""

from django.apps import AppConfig


class NetworksConfig(AppConfig):
    name = "layerlab.apps.networks"
    label = "networks"
    verbose_name = "Networks"
