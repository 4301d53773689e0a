"""Pipelines of the lab: each run of a pipeline file and its stages' states, identities and runs."""
