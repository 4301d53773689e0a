"""MLflow's REST paths (under ``/api/2.0/mlflow/`` and ``/ajax-api/2.0/mlflow/``)."""

from django.urls import path, re_path

from layerlab.apps.tracking import api

urlpatterns = [
    path("experiments/create", api.ExperimentCreate.as_view()),
    path("experiments/get", api.ExperimentGet.as_view()),
    path("experiments/get-by-name", api.ExperimentGetByName.as_view()),
    path("experiments/search", api.ExperimentSearch.as_view()),
    path("runs/create", api.RunCreate.as_view()),
    path("runs/get", api.RunGet.as_view()),
    path("runs/update", api.RunUpdate.as_view()),
    path("runs/search", api.RunSearch.as_view()),
    path("runs/delete", api.RunDelete.as_view()),
    path("runs/log-batch", api.LogBatch.as_view()),
    path("runs/log-metric", api.LogMetric.as_view()),
    path("runs/log-parameter", api.LogParam.as_view()),
    path("runs/set-tag", api.SetTag.as_view()),
    path("metrics/get-history", api.MetricHistory.as_view()),
    re_path(r"^.*$", api.NotSupported.as_view()),
]
