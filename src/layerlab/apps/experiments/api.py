"""Experiments API: create an experiment (its trials queue as ordinary runs), follow it, its report and
plots, cancel, resume, delete."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from layerlab.apps.experiments import services
from layerlab.apps.experiments.models import Experiment
from layerlab.apps.experiments.selectors import (
    experiment_counts,
    experiment_list_visible,
    experiment_plot_names,
    experiment_trials,
)
from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.permissions import ProjectScopedMixin

MAX_CONFIG_TEXT = 1_000_000  # characters of a config given as text


class ExperimentSerializer(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()
    findings = serializers.SerializerMethodField()
    plots = serializers.SerializerMethodField()

    class Meta:
        model = Experiment
        fields = [
            "id",
            "project",
            "name",
            "kind",
            "origin",
            "status",
            "options",
            "counts",
            "findings",
            "plots",
            "error",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_counts(self, obj) -> dict:
        return experiment_counts(experiment=obj)

    def get_findings(self, obj) -> list[str]:
        return list((obj.report or {}).get("findings", []))

    def get_plots(self, obj) -> list[str]:
        return experiment_plot_names(experiment=obj)


class ExperimentDetailSerializer(ExperimentSerializer):
    trials = serializers.SerializerMethodField()

    class Meta(ExperimentSerializer.Meta):
        fields = [*ExperimentSerializer.Meta.fields, "config", "trials"]
        read_only_fields = fields

    def get_trials(self, obj) -> list[dict]:
        return experiment_trials(experiment=obj)


class ConfigField(serializers.JSONField):
    """The config as a mapping, or as YAML/JSON text (an uploaded file's content)."""

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if isinstance(value, str):
            if len(value) > MAX_CONFIG_TEXT:
                raise serializers.ValidationError(f"at most {MAX_CONFIG_TEXT} characters")
            return value
        if not isinstance(value, dict):
            raise serializers.ValidationError(
                "a mapping (seed, data, model, train, experiment) or its YAML text"
            )
        return value


class ExperimentCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    project = VisibleProjectField()
    config = ConfigField(help_text="the run config with an experiment: section (a mapping, or YAML text)")
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    overrides = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list
    )


class ExperimentViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Research experiments of the projects you may see; each trial is a run (docs/experiments.md)."""

    serializer_class = ExperimentSerializer
    filterset_fields = ["project", "status", "kind"]
    ordering_fields = ["created_at", "name"]

    def get_queryset(self):
        return experiment_list_visible(user=self.request.user)

    @extend_schema(request=ExperimentCreateSerializer, responses=ExperimentDetailSerializer)
    def create(self, request, *args, **kwargs):
        body = ExperimentCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        self.check_create_role(data["project"])
        experiment = services.experiment_create(
            project=data["project"],
            user=request.user,
            config=data["config"],
            name=data["name"],
            overrides=data["overrides"],
        )
        return Response(
            ExperimentDetailSerializer(experiment, context=self.get_serializer_context()).data,
            status=status.HTTP_201_CREATED,
        )

    @extend_schema(responses=ExperimentDetailSerializer)
    def retrieve(self, request, *args, **kwargs):
        experiment = self.get_object()
        if experiment.is_running:  # records what a lost hook left behind
            services.experiment_advance(experiment=experiment)
            experiment.refresh_from_db()
        return Response(ExperimentDetailSerializer(experiment, context=self.get_serializer_context()).data)

    def perform_destroy(self, instance):
        services.experiment_delete(experiment=instance)

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def report(self, request, pk=None):
        """The report: table (columns, rows), findings, reference table, plots (data, Chart.js configs and
        PNG addresses), configs, seeds, time taken. 404 until the experiment has finished."""
        experiment = self.get_object()
        if not experiment.report:
            raise Http404("the experiment has no report yet")
        charts = services.experiment_charts(experiment=experiment)
        base = request.build_absolute_uri(f"/api/experiments/{experiment.id}/plots/")
        pngs = {name: f"{base}{name}/" for name in experiment_plot_names(experiment=experiment)}
        return Response({**experiment.report, "charts": charts, "png": pngs})

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY})
    @action(detail=True, methods=["get"], url_path=r"plots/(?P<name>[A-Za-z0-9_.=-]{1,100})")
    def plot(self, request, pk=None, name=None):
        """One plot of the report as a PNG image."""
        png = services.experiment_plot_png(experiment=self.get_object(), name=name)
        if png is None:
            raise Http404("no such plot")
        return HttpResponse(png, content_type="image/png")

    @extend_schema(request=None, responses=ExperimentSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        experiment = services.experiment_cancel(experiment=self.get_object())
        return Response(ExperimentSerializer(experiment, context=self.get_serializer_context()).data)

    @extend_schema(request=None, responses=ExperimentDetailSerializer)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        """Run a cancelled or failed experiment on: completed trials are kept, the others run again."""
        experiment = services.experiment_resume(experiment=self.get_object())
        return Response(ExperimentDetailSerializer(experiment, context=self.get_serializer_context()).data)
