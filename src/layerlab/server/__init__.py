"""The Django project of the lab server: settings, URLs, WSGI entry point."""
