"""App config of layerlab.apps.projects."""

from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "layerlab.apps.projects"
    label = "projects"
    verbose_name = "Projects"
