"""Admin of datasets."""

from django.contrib import admin

from layerlab.apps.datasets.models import Dataset


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "project", "kind", "created_at"]
    search_fields = ["name"]
    list_filter = ["kind"]
