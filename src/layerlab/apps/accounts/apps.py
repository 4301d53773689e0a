"""App config of layerlab.apps.accounts."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "layerlab.apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self):
        from layerlab.apps.accounts.throttle import connect_signals

        connect_signals()
