"""Runs API: queue runs, follow them, cancel / resume / fine-tune; metrics in metrics_api.py."""

from __future__ import annotations

from django import forms
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.networks.selectors import network_list_visible
from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.filters import LabFilterSet
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.permissions import ProjectScopedMixin
from layerlab.apps.runs import gallery, list_api, predict, query, services
from layerlab.apps.runs.files import checkpoint_response
from layerlab.apps.runs.inspect_api import RunInspectMixin
from layerlab.apps.runs.list_api import checkpoint_shown
from layerlab.apps.runs.metrics_api import RunMetricsMixin
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.references import config_public, summary_public
from layerlab.apps.runs.selectors import run_for_metrics, run_list_visible
from layerlab.apps.runs.summary import summary_problems
from layerlab.apps.runs.tags import MAX_LENGTH as TAG_LENGTH
from layerlab.apps.runs.tags import MAX_TAGS, TAG_RULE, tags_clean
from layerlab.core.errors import LayerlabError


@extend_schema_field(OpenApiTypes.INT)
class VisibleField(serializers.PrimaryKeyRelatedField):
    """A related id limited to what the caller may see (``selector(user=...)``)."""

    def __init__(self, selector, **kwargs):
        self.selector = selector
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.selector(user=self.context["request"].user)


class RunSerializer(serializers.ModelSerializer):
    progress = serializers.SerializerMethodField()
    seconds = serializers.SerializerMethodField()
    checkpoints = serializers.SerializerMethodField()
    children = serializers.SerializerMethodField(help_text="runs fine-tuned from this one")
    tags = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = [
            "id", "project", "name", "tags", "origin", "status", "progress", "config", "network", "dataset", "parent",
            "created_at", "started_at", "finished_at", "seconds", "summary", "verdict", "error",
            "cancel_requested", "attempts", "checkpoints", "children",
        ]  # fmt: skip
        read_only_fields = fields

    def to_representation(self, run):
        data = super().to_representation(run)
        data["config"] = config_public(run)  # no upload paths or checkpoint files of the server
        if isinstance(data.get("summary"), dict):
            data["summary"] = summary_public(run)
        return data

    def get_progress(self, run) -> dict:
        return {"epoch": run.epoch, "epochs": run.epochs, "text": f"epoch {run.epoch} of {run.epochs}"}

    def get_seconds(self, run) -> float | None:
        if not run.started_at:
            return None
        end = run.finished_at or run.heartbeat_at or run.started_at
        return round((end - run.started_at).total_seconds(), 3)

    def get_tags(self, run) -> list[str]:
        return [tag.name for tag in run.tags.all()]

    def get_children(self, run) -> list[int]:
        return sorted(child.id for child in run.children.all())

    def get_checkpoints(self, run) -> list[dict]:
        # Inside the run directory (``checkpoints/best.ckpt``): the server's own folders are not shown.
        return [
            {"id": c.id, "epoch": c.epoch, "path": checkpoint_shown(run, c.path)}
            for c in run.checkpoints.all()
        ]


class BinaryRenderer(BaseRenderer):
    """Lets ``Accept: application/octet-stream`` reach a file download; its errors stay JSON text."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


class TagsField(serializers.ListField):
    """A list of tags, checked by ``runs.tags`` (length, characters, count)."""

    child = serializers.CharField(max_length=TAG_LENGTH, allow_blank=False)

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", MAX_TAGS)
        kwargs.setdefault("help_text", f"at most {MAX_TAGS}; {TAG_RULE}")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        try:
            return tags_clean(super().to_internal_value(data))
        except LayerlabError as exc:
            raise serializers.ValidationError(exc.message + "; " + (exc.hint or "")) from None


class RunCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    project = VisibleProjectField()
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict)
    network = VisibleField(network_list_visible, required=False, allow_null=True, default=None)
    dataset = VisibleField(dataset_list_visible, required=False, allow_null=True, default=None)
    # `cli` runs are opened by `layerlab train` on the store itself, never through the API.
    origin = serializers.ChoiceField(
        choices=[Run.Origin.SERVER, Run.Origin.CLIENT], required=False, default=Run.Origin.SERVER
    )
    overrides = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list
    )
    tags = TagsField(required=False, default=list)

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("config is a JSON object with seed, data, model, train")
        return value


class RenameSerializer(StrictFieldsMixin, serializers.Serializer):
    """PATCH: a new name, new tags (the whole list), or both."""

    name = serializers.CharField(max_length=200, allow_blank=True, required=False)
    tags = TagsField(required=False)

    def validate(self, data):
        if not data:
            raise serializers.ValidationError("send name, tags or both")
        return data


class RerunSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict, help_text="sections to change, merged")
    overrides = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list
    )
    tags = TagsField(required=False, default=None, allow_null=True, help_text="default: the run's tags")

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("config is a JSON object of the sections to change")
        return value


class FinishSerializer(StrictFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=[s.value for s in Run.FINISHED], default=Run.Status.SUCCEEDED)
    summary = serializers.DictField(
        required=False,
        default=dict,
        help_text="the engine's summary keys (runs.summary.SCHEMA) and extra scalars",
    )
    error = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)

    def validate_summary(self, value):
        # The run page renders these values: a malformed one must be refused here, not crash it later.
        problems = summary_problems(value)
        if problems:
            raise serializers.ValidationError(problems)
        return value


class PredictSerializer(StrictFieldsMixin, serializers.Serializer):
    inputs = serializers.ListField(child=serializers.JSONField(), required=False, max_length=1024)
    files = serializers.ListField(child=serializers.FileField(), required=False, max_length=64)
    top_k = serializers.IntegerField(min_value=1, max_value=1000, default=3)

    def validate(self, data):
        if bool(data.get("inputs")) == bool(data.get("files")):
            raise serializers.ValidationError("send either inputs (arrays) or files (images)")
        return data


class FinetuneSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    config = serializers.JSONField(required=False, default=dict)
    overrides = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list
    )

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("config is a JSON object of the sections to change")
        return value


class FloatFilter(filters.NumberFilter):
    """A number compared with a JSON value: a float (NumberFilter's Decimal cannot be JSON-encoded)."""

    field_class = forms.FloatField


class RunFilter(LabFilterSet):  # project, dataset, network, parent: IdFilter
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    min_test_accuracy = FloatFilter(field_name="summary__test_accuracy", lookup_expr="gte")
    max_test_loss = FloatFilter(field_name="summary__test_loss", lookup_expr="lte")

    tag = filters.CharFilter(
        method="filter_tag", help_text="runs with this tag (repeat it: runs with every one)"
    )

    class Meta:
        model = Run
        fields = ["status", "project", "dataset", "network", "parent", "origin"]

    def filter_tag(self, queryset, name, value):
        # One join per tag (a run has each tag once, so no duplicates): ?tag=a&tag=b is "a and b".
        for tag in self.data.getlist("tag") if hasattr(self.data, "getlist") else [value]:
            queryset = queryset.filter(tags__name=tag.strip())
        return queryset


class RunViewSet(RunInspectMixin, RunMetricsMixin, ProjectScopedMixin, viewsets.ModelViewSet):
    """Runs of the projects you may see; POST queues a run for a worker."""

    filterset_class = RunFilter
    search_fields = ["name", "verdict", "error"]
    ordering_fields = ["created_at", "started_at", "finished_at", "status", "name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_roles = {
        "predict": Role.VIEWER,  # a POST that only reads
        "inspect": Role.VIEWER,  # an upload inspected: a POST that only reads (and caches)
        "finish": Role.EDITOR,
        "cancel": Role.EDITOR,
        "resume": Role.EDITOR,
        "finetune": Role.EDITOR,
        "rerun": Role.EDITOR,
        "destroy": Role.OWNER,
    }

    def get_object(self):
        if self.action != "metrics":
            return super().get_object()
        # A metric batch reads the run by id with the few fields it needs (building the visibility
        # subqueries and prefetching the run's relations was most of a 10-point batch's time); the
        # role check that follows answers 404 for a run the user may not see, as the subqueries did.
        run = run_for_metrics(self.kwargs["pk"])
        if run is None:
            raise NotFound()
        self.check_object_permissions(self.request, run)
        return run

    def get_queryset(self):
        runs = run_list_visible(user=self.request.user)
        if self.action == "list":
            return runs  # list_api reads plain values: tags, checkpoints, children in one query each
        return runs.prefetch_related("checkpoints", "children", "tags")

    def filter_queryset(self, queryset):
        """The filter backends, then ``?filter=`` / ``?metric.x>=v`` / ``?config.a.b=v`` (400 when unreadable)."""
        if self.action == "metrics":
            return queryset  # ?name= and ?points= are the endpoint's own parameters, never list filters
        queryset = super().filter_queryset(queryset)
        if self.action == "list":
            queryset = query.run_filter(queryset, query.query_conditions(self.request.query_params))
        return queryset

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "filter",
                str,
                description="conditions joined by 'and' on metric.<summary key> or config.<dotted key>, "
                "e.g. metric.test_accuracy>=0.9 and config.train.lr<0.01 (also accepted as separate "
                "query parameters: ?metric.test_accuracy>=0.9)",
            ),
            OpenApiParameter(
                "fields",
                str,
                description="only these fields of each run, comma-separated (e.g. id,name,status,summary); "
                "default: every field of the detail",
            ),
        ]
    )
    def list(self, request, *args, **kwargs):
        """Rows built by list_api in constant queries (the detail's serializer per run was the cost)."""
        fields = list_api.fields_parse(request.query_params.get("fields"))
        rows = list_api.RunRows(self.filter_queryset(self.get_queryset()), fields)
        page = self.paginate_queryset(rows)
        if page is None:
            return Response(rows.items(list(rows)))
        return self.get_paginated_response(rows.items(page))

    def get_serializer_class(self):
        return RunCreateSerializer if self.action == "create" else RunSerializer

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def create(self, request, *args, **kwargs):
        body = RunCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        self.check_create_role(data["project"])
        if data["origin"] == Run.Origin.CLIENT:
            run = services.run_start_external(
                project=data["project"],
                user=request.user,
                name=data["name"],
                config=data["config"],
                tags=data["tags"],
            )
            return Response(
                RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
            )
        run = services.run_create(
            project=data["project"],
            user=request.user,
            config=data["config"],
            name=data["name"],
            network=data["network"],
            dataset=data["dataset"],
            overrides=data["overrides"],
            tags=data["tags"],
        )
        return Response(
            RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=RenameSerializer, responses=RunSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Only the name and the tags of a run can be edited (``tags`` replaces the whole list)."""
        run = self.get_object()
        body = RenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if "name" in data:
            services.run_rename(run=run, name=data["name"])
        if "tags" in data:
            services.run_tags_set(run=run, tags=data["tags"])
        run = self.get_queryset().get(id=run.id)
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)

    def perform_destroy(self, instance):
        services.run_delete(run=instance)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        """Cancel a queued run, or ask a running one to stop."""
        run = services.run_cancel(run=self.get_object())
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Queue a failed or cancelled run again, from its last checkpoint."""
        run = services.run_resume(run=self.get_object())
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(request=FinetuneSerializer, responses={201: RunSerializer})
    @action(detail=True, methods=["post"], url_path="fine-tune")
    def finetune(self, request, pk=None):
        """A new run initialized from this one's weights."""
        parent = self.get_object()
        body = FinetuneSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = services.run_finetune(
            run=parent,
            user=request.user,
            config=data["config"],
            overrides=data["overrides"],
            name=data["name"],
        )
        return Response(
            RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=RerunSerializer, responses={201: RunSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """A new run from scratch with this run's config (any status), with changes."""
        original = self.get_object()
        body = RerunSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = services.run_rerun(
            run=original,
            user=request.user,
            config=data["config"],
            overrides=data["overrides"],
            name=data["name"],
            tags=data["tags"],
        )
        run = self.get_queryset().get(id=run.id)
        return Response(
            RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        parameters=[
            OpenApiParameter("true", int, required=True, description="the true class (a row of the matrix)"),
            OpenApiParameter("predicted", int, required=True, description="the predicted class (a column)"),
        ],
        responses=dict,
    )
    @action(detail=True, methods=["get"])
    def misclassified(self, request, pk=None):
        """The test examples of one confusion-matrix cell (at most 24): thumbnails as PNG data URLs."""
        run = self.get_object()
        cell = {}
        for name in ("true", "predicted"):
            value = request.query_params.get(name, "")
            if not value.isdigit():
                raise serializers.ValidationError({name: "a class index (0, 1, ...)"})
            cell[name] = int(value)
        return Response(gallery.run_misclassified(run=run, **cell))

    @extend_schema(request=FinishSerializer, responses=RunSerializer)
    @action(detail=True, methods=["post"])
    def finish(self, request, pk=None):
        """Close a run logged by an outside script (``origin: client``)."""
        run = self.get_object()
        body = FinishSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        run = services.run_finish_external(
            run=run, status=data["status"], summary=data["summary"], error=data["error"]
        )
        return Response(RunSerializer(run, context=self.get_serializer_context()).data)

    @extend_schema(request=PredictSerializer, responses=dict)
    @action(detail=True, methods=["post"])  # JSON arrays or multipart images (the default parsers)
    def predict(self, request, pk=None):
        """Class probabilities from the run's best checkpoint, for uploaded images or arrays."""
        run = self.get_object()
        body = PredictSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        if data.get("files"):
            results = predict.run_predict_files(run=run, files=data["files"], top_k=data["top_k"])
        else:
            results = predict.run_predict_arrays(run=run, inputs=data["inputs"], top_k=data["top_k"])
        return Response({"run": run.id, **predict.run_predict_engine(run=run), "predictions": results})

    @extend_schema(request=None, responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    @action(
        detail=True,
        methods=["get"],
        url_path=r"checkpoints/(?P<checkpoint_id>[0-9]+)",
        renderer_classes=[JSONRenderer, BinaryRenderer],
    )
    def checkpoint(self, request, pk=None, checkpoint_id=None):
        """Download one of the run's checkpoints (from this machine or the lab's storage)."""
        run = self.get_object()
        checkpoint = run.checkpoints.filter(id=checkpoint_id).first()
        if checkpoint is None:
            raise NotFound("no such checkpoint")
        try:
            return checkpoint_response(run, checkpoint)
        except Http404 as exc:  # DRF would answer its generic "Not found."
            raise NotFound(str(exc)) from None
