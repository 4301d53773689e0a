"""The ``runs/{id}/metrics`` endpoint: every series (full or downsampled), and batch ingestion."""

from __future__ import annotations

import math
import re

from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.response import Response

from layerlab.apps.projects.fields import StrictFieldsMixin
from layerlab.apps.runs.downsample import minmax_downsample
from layerlab.apps.runs.metric_blocks import metric_chart_from_blocks
from layerlab.apps.runs.metrics import MAX_POINTS_PER_BATCH, metrics_ingest
from layerlab.apps.runs.selectors import run_metric_names, run_metric_series

NAME = re.compile(r"^[\w./:-]{1,100}$")
POINT_KEYS = {"name", "step", "value"}
SERIES_KEYS = {"name", "steps", "values"}
MAX_STEP = 2**62


def point_error(where: str, reason: str) -> serializers.ValidationError:
    return serializers.ValidationError({where: [reason]})


def check_name(name, where: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise point_error(where, "1-100 letters, digits or ._/:-")
    return name


POINT_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {"name": {"type": "string"}, "step": {"type": "integer"}, "value": {"type": "number"}},
        "required": ["name", "step", "value"],
    },
}
SERIES_SCHEMA = {
    "type": "array",
    "items": {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "steps": {"type": "array", "items": {"type": "integer"}},
            "values": {"type": "array", "items": {"type": "number"}},
        },
        "required": ["name", "steps", "values"],
    },
}


@extend_schema_field(POINT_SCHEMA)
class PointListField(serializers.Field):
    """``[{"name", "step", "value"}, ...]`` checked in plain Python (DRF's nested serializers
    would spend most of a batch's time here); becomes ``(name, step, value)`` rows."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("points is a list of {name, step, value}")
        rows = []
        for index, point in enumerate(data):
            if not isinstance(point, dict) or point.keys() != POINT_KEYS:
                raise point_error(f"points[{index}]", "a point has exactly the keys name, step, value")
            step, value = point["step"], point["value"]
            if type(step) is not int or not 0 <= step <= MAX_STEP:
                raise point_error(f"points[{index}].step", "a whole number >= 0")
            if type(value) not in (int, float) or not math.isfinite(value):
                raise point_error(f"points[{index}].value", "a finite number")
            rows.append((check_name(point["name"], f"points[{index}].name"), step, float(value)))
        return rows

    def to_representation(self, value):
        return value


@extend_schema_field(SERIES_SCHEMA)
class SeriesListField(serializers.Field):
    """``[{"name", "steps": [...], "values": [...]}, ...]``: the compact form (no per-point keys)."""

    def to_internal_value(self, data):
        if not isinstance(data, list):
            raise serializers.ValidationError("series is a list of {name, steps, values}")
        rows = []
        for index, item in enumerate(data):
            where = f"series[{index}]"
            if not isinstance(item, dict) or item.keys() != SERIES_KEYS:
                raise point_error(where, "a series has exactly the keys name, steps, values")
            name, steps, values = check_name(item["name"], f"{where}.name"), item["steps"], item["values"]
            if not isinstance(steps, list) or not isinstance(values, list) or len(steps) != len(values):
                raise point_error(where, "steps and values are lists of the same length")
            if not all(type(s) is int for s in steps) or (
                steps and not 0 <= min(steps) <= max(steps) <= MAX_STEP
            ):
                raise point_error(f"{where}.steps", "whole numbers >= 0")
            if not all(type(v) in (int, float) and math.isfinite(v) for v in values):
                raise point_error(f"{where}.values", "finite numbers")
            rows.extend(zip([name] * len(steps), steps, map(float, values), strict=True))
        return rows

    def to_representation(self, value):
        return value


class BatchSerializer(StrictFieldsMixin, serializers.Serializer):
    points = PointListField(required=False, help_text="[{name, step, value}, ...]")
    series = SeriesListField(required=False, help_text="[{name, steps: [...], values: [...]}, ...]")

    def validate(self, data):
        rows = data.get("points", []) + data.get("series", [])
        if not rows:
            raise serializers.ValidationError("send points or series (at least one point)")
        if len(rows) > MAX_POINTS_PER_BATCH:
            raise serializers.ValidationError(
                f"{len(rows)} points in one batch, the limit is {MAX_POINTS_PER_BATCH}; split the batch"
            )
        return {"rows": rows}


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
        """GET every series of the run; POST a batch of up to 10,000 points (``points`` and/or ``series``)."""
        run = self.get_object()
        if request.method == "POST":
            body = BatchSerializer(data=request.data)
            body.is_valid(raise_exception=True)
            stored = metrics_ingest(run=run, rows=body.validated_data["rows"])
            return Response({"stored": stored})
        wanted = [n for item in request.query_params.getlist("name") for n in item.split(",") if n]
        budget = serializers.IntegerField(min_value=0, max_value=1_000_000).run_validation(
            request.query_params.get("points", 0)
        )
        series = {}
        for name in wanted or run_metric_names(run=run):
            chart = metric_chart_from_blocks(run.id, name, budget) if budget else None
            if chart is None:
                steps, values = run_metric_series(run=run, name=name)
                total = len(steps)
                steps, values = minmax_downsample(steps, values, budget)
            else:
                steps, values, total = chart
            series[name] = {"steps": steps, "values": values, "total": total}
        return Response({"run": run.id, "series": series})
