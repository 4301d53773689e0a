"""The API's pages: ``?limit=`` is capped (LAYERLAB_API_MAX_PAGE_SIZE), ``?offset=`` stays an integer."""

from __future__ import annotations

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination

from layerlab.core.ids import MAX_ID


class LabPagination(LimitOffsetPagination):
    """``limit``/``offset`` pages; a larger ``limit`` than the cap gives the cap (DRF's ``max_limit``)."""

    @property
    def max_limit(self) -> int:
        return settings.LAYERLAB_API_MAX_PAGE_SIZE

    def get_offset(self, request) -> int:
        # An offset past any database's integer would overflow the query: no row is that far anyway.
        return min(super().get_offset(request), MAX_ID)
