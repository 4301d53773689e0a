"""App config of layerlab.apps.journal: registers the finished-run hook of the runs app."""

from django.apps import AppConfig


class JournalConfig(AppConfig):
    name = "layerlab.apps.journal"
    label = "journal"
    verbose_name = "Journal"

    def ready(self) -> None:
        # An explicit hook, not a signal: journal depends on runs, never the reverse.
        from layerlab.apps.journal.services import entry_for_finished_run
        from layerlab.apps.runs.services import run_finished_hooks

        if entry_for_finished_run not in run_finished_hooks:
            run_finished_hooks.append(entry_for_finished_run)
