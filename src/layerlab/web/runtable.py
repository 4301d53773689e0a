"""The runs table: filters, search, sorting and paging done in the database (fast with thousands of runs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.core.paginator import Paginator
from django.db.models import CharField, F, FloatField, Q, QuerySet
from django.db.models.fields.json import KT
from django.db.models.functions import Cast, Coalesce

from layerlab.apps.runs import query as run_query
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.selectors import run_list_visible
from layerlab.apps.runs.tags import MAX_TAGS
from layerlab.core.errors import LayerlabError
from layerlab.core.ids import parse_id

PAGE_SIZE = 50
# The columns a user may sort by: the query parameter -> the database expression.
SORTS = {
    "id": "id",
    "created": "created_at",
    "started": "started_at",
    "status": "status",
    "name": "name",
    "project": "project__name",
    "val": "val_accuracy",
    "test": "test_accuracy",
}


@dataclass
class RunQuery:
    """The table's query parameters, cleaned (unknown values fall back to defaults)."""

    project: int | None = None
    status: str = ""
    search: str = ""
    sort: str = "-created"
    page: int = 1
    tags: list[str] = field(default_factory=list)
    filter: str = ""  # the expression as typed (``metric.test_accuracy>=0.9 and ...``)
    conditions: list = field(default_factory=list)
    filter_error: str = ""  # why the expression was not applied

    @property
    def filtered(self) -> bool:
        return bool(self.search or self.status or self.project or self.tags or self.conditions)

    @classmethod
    def from_params(cls, params) -> RunQuery:
        """Args: params: the request's GET mapping."""
        project = params.get("project", "")
        status = params.get("status", "")
        sort = params.get("sort", "-created")
        page = params.get("page", "1")
        # ?tag=a&tag=b or ?tag=a,b (the form's one box): runs with every tag.
        given = params.getlist("tag") if hasattr(params, "getlist") else [params.get("tag", "")]
        tags = list(dict.fromkeys(t.strip() for text in given for t in text.split(",") if t.strip()))[
            :MAX_TAGS
        ]
        expression = params.get("filter", "").strip()
        try:
            conditions, error = run_query.query_conditions(params), ""
        except LayerlabError as exc:
            conditions, error = [], exc.one_line()
        return cls(
            tags=tags,
            filter=expression,
            conditions=conditions,
            filter_error=error,
            project=parse_id(project),
            status=status if status in Run.Status.values else "",
            search=params.get("q", "").strip()[:200],
            sort=sort if sort.lstrip("-") in SORTS else "-created",
            page=parse_id(page) or 1,
        )


def run_table_queryset(*, user, query: RunQuery) -> QuerySet[Run]:
    """Visible runs, filtered and ordered, with only the columns the table shows.

    The JSON config and summary are not loaded: the few values shown are extracted by the database.
    """
    runs = (
        run_list_visible(user=user)
        .defer("config", "summary", "error")
        .annotate(
            preset=KT("config__model__preset"),
            source=KT("config__data__source"),
            # The Dataset column: a saved dataset's name, else the source (a built-in such as spiral).
            dataset_label=Coalesce(F("dataset__name"), KT("config__data__source"), output_field=CharField()),
            val_accuracy=Cast(KT("summary__val_accuracy"), FloatField()),
            test_accuracy=Cast(KT("summary__test_accuracy"), FloatField()),
        )
    )
    if query.project:
        runs = runs.filter(project_id=query.project)
    if query.status:
        runs = runs.filter(status=query.status)
    if query.search:
        text = (
            Q(name__icontains=query.search)
            | Q(verdict__icontains=query.search)
            | Q(dataset_label__icontains=query.search)
        )
        if parse_id(query.search) is not None:
            text |= Q(id=parse_id(query.search))
        runs = runs.filter(text)
    for tag in query.tags:
        runs = runs.filter(tags__name=tag)
    runs = run_query.run_filter(runs, query.conditions).prefetch_related("tags")
    field = SORTS[query.sort.lstrip("-")]
    order = F(field).desc(nulls_last=True) if query.sort.startswith("-") else F(field).asc(nulls_last=True)
    return runs.order_by(order, "-id")


def run_table_page(*, user, query: RunQuery):
    """One page of the table (LIMIT/OFFSET in the database) and its paginator."""
    paginator = Paginator(run_table_queryset(user=user, query=query), PAGE_SIZE)
    return paginator.get_page(query.page)


def verdict_word(verdict: str) -> str:
    """The verdict's one word for the table: overfitting, underfitting, good fit (or blank)."""
    for word in ("overfitting", "underfitting", "good fit"):
        if word in verdict:
            return word
    return ""
