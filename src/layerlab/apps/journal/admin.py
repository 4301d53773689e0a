"""Admin of the journal."""

from django.contrib import admin

from layerlab.apps.journal.models import Entry


@admin.register(Entry)
class EntryAdmin(admin.ModelAdmin):
    list_display = ["title", "project", "date", "automatic"]
    search_fields = ["title", "body"]
