"""Errors and small shared types; imports the standard library only."""
