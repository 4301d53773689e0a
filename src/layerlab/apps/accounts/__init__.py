"""Accounts: users, groups and API tokens (Django's own models)."""
