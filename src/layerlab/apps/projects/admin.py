"""Admin of projects and their shares."""

from django.contrib import admin

from layerlab.apps.projects.models import Project, ProjectShare


class ShareInline(admin.TabularInline):
    model = ProjectShare
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "description"]
    inlines = [ShareInline]
