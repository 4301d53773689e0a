"""Pipelines on Luigi: an interface like the CLI; each stage a thin Luigi task with one target in the lab's storage."""
