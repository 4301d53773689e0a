from django.contrib import admin

from layerlab.apps.experiments.models import Experiment, ExperimentTrial


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "kind", "status", "origin", "created_at"]
    list_filter = ["status", "kind", "origin"]


@admin.register(ExperimentTrial)
class ExperimentTrialAdmin(admin.ModelAdmin):
    list_display = ["id", "experiment", "key", "status", "probe", "run"]
    list_filter = ["status"]
