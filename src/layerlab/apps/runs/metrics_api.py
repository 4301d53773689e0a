"""The ``runs/{id}/metrics`` endpoint: every series (full or downsampled), and batch ingestion."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from layerlab.apps.projects.fields import StrictFieldsMixin
from layerlab.apps.runs.downsample import minmax_downsample
from layerlab.apps.runs.metrics import MAX_POINTS_PER_BATCH, metrics_ingest
from layerlab.apps.runs.selectors import run_metric_names, run_metric_series


class PointSerializer(StrictFieldsMixin, serializers.Serializer):
    name = serializers.RegexField(r"^[\w./:-]{1,100}$", help_text="series name, e.g. train_loss")
    step = serializers.IntegerField(min_value=0, max_value=2**62)
    value = serializers.FloatField()


class BatchSerializer(StrictFieldsMixin, serializers.Serializer):
    points = PointSerializer(many=True, max_length=MAX_POINTS_PER_BATCH, allow_empty=False)


class RunMetricsMixin:
    """Adds ``GET/POST runs/{id}/metrics/`` to the runs viewset."""

    @extend_schema(
        methods=["GET"],
        parameters=[
            OpenApiParameter("name", str, description="only these series (repeat or comma-separate)"),
            OpenApiParameter(
                "points", int, description="point budget per series (min/max per bucket keeps peaks)"
            ),
        ],
        responses={200: dict},
    )
    @extend_schema(methods=["POST"], request=BatchSerializer, responses={200: dict})
    @action(detail=True, methods=["get", "post"])
    def metrics(self, request, pk=None):
        """GET every series of the run; POST a batch of up to 10,000 points."""
        run = self.get_object()
        if request.method == "POST":
            body = BatchSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            stored = metrics_ingest(run=run, points=body.validated_data["points"])
            return Response({"stored": stored})
        wanted = [n for item in request.query_params.getlist("name") for n in item.split(",") if n]
        budget = serializers.IntegerField(min_value=0, max_value=1_000_000).run_validation(
            request.query_params.get("points", 0)
        )
        series = {}
        for name in wanted or run_metric_names(run=run):
            steps, values = run_metric_series(run=run, name=name)
            total = len(steps)
            steps, values = minmax_downsample(steps, values, budget)
            series[name] = {"steps": steps, "values": values, "total": total}
        return Response({"run": run.id, "series": series})
