"""Datasets: built-in sources, server-side imports and uploads, kept per project."""
