"""WSGI entry point of the lab server (what gunicorn serves)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "layerlab.server.settings")

application = get_wsgi_application()

# Import the URL configuration (views, serializers, DRF, the schema tools) now, so a fresh
# gunicorn worker does not spend its first request on imports.
from django.urls import get_resolver  # noqa: E402

_ = get_resolver().url_patterns
