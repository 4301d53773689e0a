"""Query-parameter filters of the API: ids are checked numbers, never a lookup that tells what exists.

django-filter's default for a foreign key is a ``ModelChoiceFilter`` over every row: ``?project=7``
of a project the caller may not see answers 200 (empty) while a missing one answers 400, which
tells them apart; and ``?project=99999999999999999999`` overflows the database (500). ``IdFilter``
compares the column with a whole number in ``1..MAX_ID``: anything else is 400, and an id that
is missing or hidden both answer 200 with nothing in it.
"""

from __future__ import annotations

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from django_filters.rest_framework import DjangoFilterBackend
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS

from layerlab.core.ids import MAX_ID


class IdField(forms.IntegerField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class IdFilter(filters.NumberFilter):
    """``?project=<id>``: equality with a checked id (missing and hidden ids alike give no rows)."""

    field_class = IdField


ID_FILTERS = {"filter_class": IdFilter}


class LabFilterSet(filters.FilterSet):
    """The API's filter sets: foreign keys and primary keys filter through ``IdFilter``."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        models.AutoField: ID_FILTERS,
        models.BigAutoField: ID_FILTERS,
        models.ForeignKey: ID_FILTERS,
        models.OneToOneField: ID_FILTERS,
    }


class LabFilterBackend(DjangoFilterBackend):
    """``filterset_fields`` of the viewsets build ``LabFilterSet`` subclasses."""

    filterset_base = LabFilterSet
