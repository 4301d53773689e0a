from django.contrib import admin

from layerlab.apps.sweeps.models import Sweep, SweepTrial


@admin.register(Sweep)
class SweepAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "status", "method", "trials", "created_at"]
    list_filter = ["status", "method"]


@admin.register(SweepTrial)
class SweepTrialAdmin(admin.ModelAdmin):
    list_display = ["id", "sweep", "number", "state", "value", "epochs", "run"]
    list_filter = ["state"]
