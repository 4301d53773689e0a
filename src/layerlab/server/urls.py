"""URLs of the lab server: the API under /api/, its schema and docs, the admin, static files, the dashboard."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from layerlab.apps.datasets.api import DatasetViewSet
from layerlab.apps.experiments.api import ExperimentViewSet
from layerlab.apps.journal.api import EntryViewSet
from layerlab.apps.networks.api import NetworkViewSet
from layerlab.apps.projects.api import ProjectViewSet
from layerlab.apps.runs.api import RunViewSet
from layerlab.apps.sweeps.api import SweepViewSet
from layerlab.server.static import static_file

router = DefaultRouter()
router.register("projects", ProjectViewSet, basename="project")
router.register("datasets", DatasetViewSet, basename="dataset")
router.register("networks", NetworkViewSet, basename="network")
router.register("runs", RunViewSet, basename="run")
router.register("journal", EntryViewSet, basename="journal")
router.register("sweeps", SweepViewSet, basename="sweep")
router.register("experiments", ExperimentViewSet, basename="experiment")

urlpatterns = [
    path("api/", include(router.urls)),
    path("api/", include("layerlab.apps.accounts.urls")),
    path("api/auth/", include("rest_framework.urls")),  # browsable API login/logout
    # MLflow's tracking REST protocol (the MLflow client and the loggers built on it).
    path("api/2.0/mlflow/", include("layerlab.apps.tracking.urls")),
    path("ajax-api/2.0/mlflow/", include("layerlab.apps.tracking.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    re_path(r"^static/(?P<path>.+)$", static_file, name="static"),
    path("", include("layerlab.web.urls")),
]

# Error pages in the dashboard's layout; JSON {"error", "detail"} under /api/.
handler400 = "layerlab.web.views.errors.bad_request"
handler403 = "layerlab.web.views.errors.permission_denied"
handler404 = "layerlab.web.views.errors.page_not_found"
handler500 = "layerlab.web.views.errors.server_error"
