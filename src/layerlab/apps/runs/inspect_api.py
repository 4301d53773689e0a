"""The ``runs/{id}/inspect`` endpoints: what a run learned, for a test example or an uploaded image.

``GET  inspect/?example=N[&layer=&channel=]``  the JSON index of test example N (computed once, then cached)
``POST inspect/`` multipart ``file`` (+ ``layer``, ``channel``)  the same for an uploaded image
``GET  inspect/examples/?offset=``               a page of test examples for the input picker
``GET  inspect/<key>/<name>.png``                one image named by an index
Every one answers 404 for a run the caller may not see (the viewset's object lookup).
"""

from __future__ import annotations

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response

from layerlab.apps.projects.fields import StrictFieldsMixin
from layerlab.apps.runs import inspect
from layerlab.core.errors import CheckpointError

MAX_CHANNEL = 1_000_000


class InspectOptions(StrictFieldsMixin, serializers.Serializer):
    """Which layer and channel the grids, top-9 and maximization are about (defaults: the engine's)."""

    layer = serializers.RegexField(r"^[\w.\-]{1,100}$", required=False, allow_blank=True, default="")
    channel = serializers.IntegerField(min_value=0, max_value=MAX_CHANNEL, required=False, allow_null=True)


class InspectExampleQuery(InspectOptions):
    example = serializers.IntegerField(min_value=0, max_value=10**9)


class InspectUpload(InspectOptions):
    file = serializers.FileField()


class ExamplesQuery(StrictFieldsMixin, serializers.Serializer):
    offset = serializers.IntegerField(min_value=0, max_value=10**9, default=0)


class PNGRenderer(BaseRenderer):
    """Lets ``Accept: image/png`` reach an image; its errors stay JSON text."""

    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data if isinstance(data, bytes) else JSONRenderer().render(data)


def options(data: dict) -> dict:
    return {"layer": data.get("layer") or None, "channel": data.get("channel")}


class RunInspectMixin:
    """The inspect actions of the runs viewset (reads: the viewer role)."""

    @extend_schema(
        methods=["GET"],
        operation_id="runs_inspect_example",
        parameters=[
            OpenApiParameter("example", int, required=True, description="a position in the run's test split"),
            OpenApiParameter("layer", str, description="a layer name (default: the last conv layer)"),
            OpenApiParameter(
                "channel", int, description="a channel of that layer (default: the most active)"
            ),
        ],
        responses=dict,
    )
    @extend_schema(
        methods=["POST"],
        operation_id="runs_inspect_upload",
        request={"multipart/form-data": InspectUpload},
        responses=dict,
    )
    @action(detail=True, methods=["get", "post"], url_path="inspect")
    def inspect(self, request, pk=None):
        """What the run learned, for one input: activation grids, filters, top-9, maximization, attributions."""
        run = self.get_object()
        if request.method == "POST":
            body = InspectUpload(data=request.data)
            body.is_valid(raise_exception=True)
            data = body.validated_data
            return Response(inspect.run_inspect_upload(run=run, upload=data["file"], **options(data)))
        query = InspectExampleQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return Response(inspect.run_inspect_example(run=run, example=data["example"], **options(data)))

    @extend_schema(parameters=[OpenApiParameter("offset", int)], responses=dict)
    @action(detail=True, methods=["get"], url_path="inspect/examples")
    def inspect_examples(self, request, pk=None):
        """A page of the run's test examples (position, label, thumbnail) to choose an input from."""
        run = self.get_object()
        query = ExamplesQuery(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(inspect.run_inspect_examples(run=run, offset=query.validated_data["offset"]))

    @extend_schema(
        operation_id="runs_inspect_image", request=None, responses={(200, "image/png"): OpenApiTypes.BINARY}
    )
    @action(
        detail=True,
        methods=["get"],
        url_path=r"inspect/(?P<key>[0-9a-f]{8,64})/(?P<name>[A-Za-z0-9_.\-]{1,100}\.png)",
        renderer_classes=[JSONRenderer, PNGRenderer],
    )
    def inspect_image(self, request, pk=None, key=None, name=None):
        """One image of a cached inspection (the names its index gives)."""
        run = self.get_object()
        try:
            path = inspect.run_inspect_image(run=run, key=key, name=name)
        except CheckpointError:
            raise NotFound("no such inspection image (compute the inspection first)") from None
        response = FileResponse(open(path, "rb"), content_type="image/png")  # noqa: SIM115 (closed by Django)
        response["Cache-Control"] = "private, max-age=86400"  # the key is the content: it never changes
        return response
