"""Runs API: queue runs, follow them, cancel / resume / fine-tune; metrics in metrics_api.py."""

from __future__ import annotations

from django import forms
from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from layerlab.apps.datasets.selectors import dataset_list_visible
from layerlab.apps.networks.selectors import network_list_visible
from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.models import Role
from layerlab.apps.projects.permissions import ProjectScopedMixin
from layerlab.apps.runs import predict, services
from layerlab.apps.runs.files import checkpoint_response
from layerlab.apps.runs.metrics_api import RunMetricsMixin
from layerlab.apps.runs.models import Run
from layerlab.apps.runs.selectors import run_list_visible


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

    class Meta:
        model = Run
        fields = [
            "id", "project", "name", "origin", "status", "progress", "config", "network", "dataset", "parent",
            "created_at", "started_at", "finished_at", "seconds", "summary", "verdict", "error",
            "cancel_requested", "attempts", "checkpoints", "children",
        ]  # fmt: skip
        read_only_fields = fields

    def get_progress(self, run) -> dict:
        return {"epoch": run.epoch, "epochs": run.epochs, "text": f"epoch {run.epoch} of {run.epochs}"}

    def get_seconds(self, run) -> float | None:
        if not run.started_at:
            return None
        end = run.finished_at or run.heartbeat_at or run.started_at
        return round((end - run.started_at).total_seconds(), 3)

    def get_children(self, run) -> list[int]:
        return sorted(child.id for child in run.children.all())

    def get_checkpoints(self, run) -> list[dict]:
        return [{"id": c.id, "epoch": c.epoch, "path": c.path} for c in run.checkpoints.all()]


class BinaryRenderer(BaseRenderer):
    """Lets ``Accept: application/octet-stream`` reach a file download; its errors stay JSON text."""

    media_type = "application/octet-stream"
    format = "bin"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


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

    def validate_config(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("config is a JSON object with seed, data, model, train")
        return value


class RenameSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.CharField(max_length=200, allow_blank=True)


class FinishSerializer(StrictFieldsMixin, serializers.Serializer):
    status = serializers.ChoiceField(choices=[s.value for s in Run.FINISHED], default=Run.Status.SUCCEEDED)
    summary = serializers.DictField(required=False, default=dict)
    error = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


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


class RunFilter(filters.FilterSet):
    created_after = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lte")
    min_test_accuracy = FloatFilter(field_name="summary__test_accuracy", lookup_expr="gte")
    max_test_loss = FloatFilter(field_name="summary__test_loss", lookup_expr="lte")

    class Meta:
        model = Run
        fields = ["status", "project", "dataset", "network", "parent", "origin"]


class RunViewSet(RunMetricsMixin, ProjectScopedMixin, viewsets.ModelViewSet):
    """Runs of the projects you may see; POST queues a run for a worker."""

    filterset_class = RunFilter
    search_fields = ["name", "verdict", "error"]
    ordering_fields = ["created_at", "started_at", "finished_at", "status", "name"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]
    action_roles = {
        "predict": Role.VIEWER,  # a POST that only reads
        "finish": Role.EDITOR,
        "cancel": Role.EDITOR,
        "resume": Role.EDITOR,
        "finetune": Role.EDITOR,
        "destroy": Role.OWNER,
    }

    def get_queryset(self):
        return run_list_visible(user=self.request.user).prefetch_related("checkpoints", "children")

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
                project=data["project"], user=request.user, name=data["name"], config=data["config"]
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
        )
        return Response(
            RunSerializer(run, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=RenameSerializer, responses=RunSerializer)
    def partial_update(self, request, *args, **kwargs):
        """Only the name of a run can be edited."""
        run = self.get_object()
        body = RenameSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        Run.objects.filter(id=run.id).update(name=body.validated_data["name"])
        run.refresh_from_db()
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
        return Response({"run": run.id, "predictions": results})

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
