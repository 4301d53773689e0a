"""App config of layerlab.apps.sweeps: registers the finished-run hook and the trial callbacks of the runs app."""

from django.apps import AppConfig


class SweepsConfig(AppConfig):
    name = "layerlab.apps.sweeps"
    label = "sweeps"
    verbose_name = "Sweeps"

    def ready(self) -> None:
        # Explicit hooks, not signals: sweeps depends on runs, never the reverse.
        from layerlab.apps.runs.execution import run_callback_factories
        from layerlab.apps.runs.services import run_finished_hooks
        from layerlab.apps.sweeps.services import sweep_trial_callbacks, sweep_trial_finished

        if sweep_trial_finished not in run_finished_hooks:
            run_finished_hooks.append(sweep_trial_finished)
        if sweep_trial_callbacks not in run_callback_factories:
            run_callback_factories.append(sweep_trial_callbacks)
