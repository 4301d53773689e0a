"""Admin of pipelines (read mostly: the CLI writes them)."""

from django.contrib import admin

from layerlab.apps.pipelines.models import Pipeline, PipelineStage


class StageInline(admin.TabularInline):
    model = PipelineStage
    extra = 0
    fields = ("name", "kind", "state", "identity", "run", "error")
    readonly_fields = fields


@admin.register(Pipeline)
class PipelineAdmin(admin.ModelAdmin):
    list_display = ("name", "project", "state", "updated_at")
    inlines = [StageInline]
