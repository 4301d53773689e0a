"""Admin of runs and their checkpoints."""

from django.contrib import admin

from layerlab.apps.runs.models import Checkpoint, Run


class CheckpointInline(admin.TabularInline):
    model = Checkpoint
    extra = 0


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "project", "status", "epoch", "epochs", "created_at"]
    list_filter = ["status", "origin"]
    search_fields = ["name"]
    inlines = [CheckpointInline]
