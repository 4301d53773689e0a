"""App config of layerlab.apps.runs."""

from django.apps import AppConfig


class RunsConfig(AppConfig):
    name = "layerlab.apps.runs"
    label = "runs"
    verbose_name = "Runs"

    def ready(self) -> None:
        from layerlab.apps.runs.execution import run_callback_factories
        from layerlab.apps.runs.frames import run_frames_callbacks
        from layerlab.apps.runs.reconstruction import run_reconstruction_callbacks

        for factory in (run_reconstruction_callbacks, run_frames_callbacks):  # their reports, when a run ends
            if factory not in run_callback_factories:
                run_callback_factories.append(factory)
