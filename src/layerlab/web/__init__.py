"""The dashboard: web pages that render selector output and write only through services."""
