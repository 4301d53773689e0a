"""MLflow's tracking REST endpoints: thin views over ``tracking.services`` and ``tracking.selectors``.

Requests and answers have MLflow's shapes (GET arguments in the query string, POST ones as JSON);
errors are MLflow's ``{"error_code", "message"}`` with the HTTP status its client expects.
"""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import APIException
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from layerlab.apps.tracking import selectors, services
from layerlab.apps.tracking.auth import BearerTokenAuthentication, ThrottledBasicAuthentication
from layerlab.apps.tracking.errors import TrackingError
from layerlab.core.errors import LayerlabError

HTTP_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "ENDPOINT_NOT_FOUND",
    405: "ENDPOINT_NOT_FOUND",
    413: "INVALID_PARAMETER_VALUE",
    429: "REQUEST_LIMIT_EXCEEDED",
}


class MlflowView(APIView):
    """Token (``Bearer`` or ``Token``), basic auth or the dashboard's session; MLflow's error shape."""

    authentication_classes = [
        BearerTokenAuthentication,
        TokenAuthentication,
        ThrottledBasicAuthentication,
        SessionAuthentication,
    ]
    permission_classes = [IsAuthenticated]
    schema = None  # MLflow's protocol, described by MLflow; not part of the lab's OpenAPI schema

    def handle_exception(self, exc):
        if isinstance(exc, TrackingError):
            return Response(exc.as_mlflow(), status=exc.status)
        if isinstance(exc, LayerlabError):
            return Response({"error_code": "INVALID_PARAMETER_VALUE", "message": exc.one_line()}, status=400)
        response = super().handle_exception(exc)
        detail = exc.detail if isinstance(exc, APIException) else response.data
        code = HTTP_CODES.get(response.status_code, "INTERNAL_ERROR")
        response.data = {"error_code": code, "message": str(detail)}
        return response

    def body(self, request) -> dict:
        if request.method == "GET":
            return {key: request.query_params.get(key) for key in request.query_params}
        data = request.data
        if not isinstance(data, dict):
            raise TrackingError("BAD_REQUEST", "the body must be a JSON object")
        return data

    def run_id(self, args: dict):
        return args.get("run_id") or args.get("run_uuid")


def paged(key: str, items: list, token: str | None) -> Response:
    body = {key: items}
    if token:
        body["next_page_token"] = token
    return Response(body)


class ExperimentCreate(MlflowView):
    def post(self, request):
        args = self.body(request)
        project = services.experiment_create(user=request.user, name=args.get("name"), tags=args.get("tags"))
        return Response({"experiment_id": str(project.id)})


class ExperimentGet(MlflowView):
    def get(self, request):
        experiment_id = str(self.body(request).get("experiment_id") or "")
        if experiment_id == selectors.DEFAULT_EXPERIMENT_ID:
            project = services.experiment_default_ensure(user=request.user)
        else:
            project = selectors.experiment_get_visible(user=request.user, experiment_id=experiment_id)
        return Response({"experiment": selectors.experiment_json(project)})


class ExperimentGetByName(MlflowView):
    def get(self, request):
        name = str(self.body(request).get("experiment_name") or "")
        project = selectors.experiment_by_name(user=request.user, name=name)
        return Response({"experiment": selectors.experiment_json(project)})


class ExperimentSearch(MlflowView):
    def post(self, request):
        args = self.body(request)
        items, token = selectors.experiments_search(
            user=request.user,
            filter_string=args.get("filter") or "",
            max_results=args.get("max_results"),
            order_by=args.get("order_by"),
            token=args.get("page_token"),
        )
        return paged("experiments", items, token)

    get = post


class RunCreate(MlflowView):
    def post(self, request):
        args = self.body(request)
        run = services.run_create(
            user=request.user,
            experiment_id=args.get("experiment_id"),
            run_name=args.get("run_name") or "",
            tags=args.get("tags"),
        )
        return Response({"run": selectors.run_get_json(user=request.user, run_id=run.id)})


class RunGet(MlflowView):
    def get(self, request):
        return Response(
            {"run": selectors.run_get_json(user=request.user, run_id=self.run_id(self.body(request)))}
        )


class RunUpdate(MlflowView):
    def post(self, request):
        args = self.body(request)
        run = services.run_update(
            user=request.user,
            run_id=self.run_id(args),
            status=args.get("status"),
            run_name=args.get("run_name"),
        )
        return Response({"run_info": selectors.run_json(run, [], [])["info"]})


class RunSearch(MlflowView):
    def post(self, request):
        args = self.body(request)
        ids = args.get("experiment_ids") or []
        if isinstance(ids, str):
            ids = [ids]
        items, token = selectors.runs_search(
            user=request.user,
            experiment_ids=ids,
            filter_string=args.get("filter") or "",
            max_results=args.get("max_results"),
            order_by=args.get("order_by"),
            token=args.get("page_token"),
        )
        return paged("runs", items, token)


class RunDelete(MlflowView):
    def post(self, request):
        services.run_remove(user=request.user, run_id=self.run_id(self.body(request)))
        return Response({})


class LogBatch(MlflowView):
    def post(self, request):
        args = self.body(request)
        services.run_log(
            user=request.user,
            run_id=self.run_id(args),
            metrics=args.get("metrics"),
            params=args.get("params"),
            tags=args.get("tags"),
        )
        return Response({})


class LogMetric(MlflowView):
    def post(self, request):
        args = self.body(request)
        point = {"key": args.get("key"), "value": args.get("value"), "step": args.get("step")}
        services.run_log(user=request.user, run_id=self.run_id(args), metrics=[point])
        return Response({})


class LogParam(MlflowView):
    def post(self, request):
        args = self.body(request)
        pair = {"key": args.get("key"), "value": args.get("value")}
        services.run_log(user=request.user, run_id=self.run_id(args), params=[pair])
        return Response({})


class SetTag(MlflowView):
    def post(self, request):
        args = self.body(request)
        pair = {"key": args.get("key"), "value": args.get("value")}
        services.run_log(user=request.user, run_id=self.run_id(args), tags=[pair])
        return Response({})


class MetricHistory(MlflowView):
    def get(self, request):
        args = self.body(request)
        points, token = selectors.metric_history(
            user=request.user,
            run_id=self.run_id(args),
            key=str(args.get("metric_key") or ""),
            max_results=args.get("max_results"),
            token=args.get("page_token"),
        )
        return paged("metrics", points, token)


class NotSupported(MlflowView):
    """Any other MLflow endpoint (artifacts, models, traces ...): MLflow's ENDPOINT_NOT_FOUND."""

    def dispatch_error(self, request):
        return Response(
            {"error_code": "ENDPOINT_NOT_FOUND", "message": f"the lab does not serve {request.path}"},
            status=404,
        )

    get = post = put = patch = delete = dispatch_error
