"""WSGI entry point of the lab server (what gunicorn serves)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "layerlab.server.settings")

application = get_wsgi_application()
