"""App config of layerlab.apps.experiments: registers its hooks in the runs app (finished runs, recovery)."""

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "layerlab.apps.experiments"
    label = "experiments"
    verbose_name = "Experiments"

    def ready(self) -> None:
        # An explicit hook, not a signal: experiments depends on runs, never the reverse.
        from layerlab.apps.experiments.services import experiment_trial_finished
        from layerlab.apps.runs.services import run_finished_hooks

        if experiment_trial_finished not in run_finished_hooks:
            run_finished_hooks.append(experiment_trial_finished)
        # The workers' periodic recovery: probe jobs lost with their worker are queued again.
        from layerlab.apps.experiments.recovery import probes_recover_orphans
        from layerlab.apps.runs.recovery import recovery_hooks

        if probes_recover_orphans not in recovery_hooks:
            recovery_hooks.append(probes_recover_orphans)
