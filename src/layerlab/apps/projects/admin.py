"""Admin of projects, their shares and the server folders granted to them."""

import os

from django import forms
from django.contrib import admin

from layerlab.apps.projects.models import Project, ProjectDataRoot, ProjectMember, ProjectShare
from layerlab.apps.projects.services import data_root_within_limits


class ShareInline(admin.TabularInline):
    model = ProjectShare
    extra = 0


class MemberInline(admin.TabularInline):
    """Users given a role by name (owners manage these on the project page too)."""

    model = ProjectMember
    extra = 0
    raw_id_fields = ["user"]


class DataRootForm(forms.ModelForm):
    class Meta:
        model = ProjectDataRoot
        fields = ["path", "note"]

    def clean_path(self):
        """Stored as the real folder (symlinks resolved): data paths are checked against that."""
        path = os.path.expanduser(self.cleaned_data["path"].strip())
        if not os.path.isabs(path):
            raise forms.ValidationError("give an absolute folder on the server")
        real = os.path.realpath(path)
        if not os.path.isdir(real):
            raise forms.ValidationError("this folder does not exist on the server")
        if not data_root_within_limits(real):
            raise forms.ValidationError("this folder is outside LAYERLAB_IMPORT_ROOTS")
        return real


class DataRootInline(admin.TabularInline):
    """Server folders the project may read (``data.path``); only superusers see or change them."""

    model = ProjectDataRoot
    form = DataRootForm
    extra = 0
    verbose_name = "granted data folder"

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "created_at"]
    search_fields = ["name", "description"]
    inlines = [ShareInline, MemberInline, DataRootInline]

    def save_formset(self, request, form, formset, change):
        """Records who granted a folder (the inline's rows are only ever saved by a superuser)."""
        instances = formset.save(commit=False)
        for obj in formset.deleted_objects:
            obj.delete()
        for obj in instances:
            if isinstance(obj, ProjectDataRoot) and obj.granted_by_id is None:
                obj.granted_by = request.user
            obj.save()
        formset.save_m2m()
