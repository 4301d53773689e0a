"""Sweeps API: create a sweep (its trials queue as ordinary runs), follow it, its trials, importances, cancel."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from layerlab.apps.projects.fields import StrictFieldsMixin, VisibleProjectField
from layerlab.apps.projects.permissions import ProjectScopedMixin
from layerlab.apps.sweeps import services
from layerlab.apps.sweeps.models import Sweep
from layerlab.apps.sweeps.selectors import (
    sweep_best,
    sweep_counts,
    sweep_epochs,
    sweep_list_visible,
    sweep_trial_rows,
)


class SweepSerializer(serializers.ModelSerializer):
    counts = serializers.SerializerMethodField()
    best = serializers.SerializerMethodField()
    epochs_trained = serializers.SerializerMethodField()

    class Meta:
        model = Sweep
        fields = [
            "id",
            "project",
            "name",
            "study_name",
            "status",
            "method",
            "metric",
            "goal",
            "trials",
            "parallel",
            "pruner",
            "spec",
            "counts",
            "epochs_trained",
            "best",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_counts(self, obj) -> dict:
        return sweep_counts(sweep=obj)

    def get_epochs_trained(self, obj) -> int:
        return sweep_epochs(sweep=obj)

    def get_best(self, obj) -> dict | None:
        best = sweep_best(sweep=obj)
        if best is None:
            return None
        return {"number": best.number, "value": best.value, "run": best.run_id, "params": best.params}


class SweepCreateSerializer(StrictFieldsMixin, serializers.Serializer):
    project = VisibleProjectField()
    config = serializers.JSONField(
        help_text="the experiment config, with a sweep section unless sweep is given"
    )
    sweep = serializers.JSONField(required=False, default=None, allow_null=True)
    name = serializers.CharField(required=False, default="", allow_blank=True, max_length=200)
    overrides = serializers.ListField(
        child=serializers.CharField(max_length=500), required=False, default=list
    )


class TrialTableSerializer(serializers.Serializer):
    columns = serializers.ListField(child=serializers.CharField())
    params = serializers.ListField(child=serializers.CharField())
    rows = serializers.ListField(child=serializers.ListField(child=serializers.JSONField()))


class SweepViewSet(
    ProjectScopedMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """Hyper-parameter sweeps (Optuna studies) of the projects you may see; each trial is a run."""

    serializer_class = SweepSerializer
    filterset_fields = ["project", "status", "method"]
    ordering_fields = ["created_at", "name"]

    def get_queryset(self):
        return sweep_list_visible(user=self.request.user)

    @extend_schema(request=SweepCreateSerializer, responses=SweepSerializer)
    def create(self, request, *args, **kwargs):
        body = SweepCreateSerializer(data=request.data, context=self.get_serializer_context())
        body.is_valid(raise_exception=True)
        data = body.validated_data
        self.check_create_role(data["project"])
        sweep = services.sweep_create(
            project=data["project"],
            user=request.user,
            config=data["config"],
            sweep=data["sweep"],
            name=data["name"],
            overrides=data["overrides"],
        )
        return Response(
            SweepSerializer(sweep, context=self.get_serializer_context()).data, status=status.HTTP_201_CREATED
        )

    def retrieve(self, request, *args, **kwargs):
        sweep = self.get_object()
        if sweep.status == Sweep.Status.RUNNING:  # tells what a killed worker left untold
            services.sweep_reconcile(sweep=sweep)
            sweep.refresh_from_db()
        return Response(SweepSerializer(sweep, context=self.get_serializer_context()).data)

    def perform_destroy(self, instance):
        services.sweep_delete(sweep=instance)

    @extend_schema(responses=TrialTableSerializer)
    @action(detail=True, methods=["get"])
    def trials(self, request, pk=None):
        """Every trial as one row: number, state, value, epochs, run, run_status, then the parameters."""
        return Response(sweep_trial_rows(sweep=self.get_object()))

    @extend_schema(responses=OpenApiTypes.OBJECT)
    @action(detail=True, methods=["get"])
    def importances(self, request, pk=None):
        """Parameter importances (Optuna's default evaluator), computed on demand and cached."""
        return Response(services.sweep_importances(sweep=self.get_object()))

    @extend_schema(request=None, responses=SweepSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        sweep = services.sweep_cancel(sweep=self.get_object())
        return Response(SweepSerializer(sweep, context=self.get_serializer_context()).data)
