"""Runs: experiments queued, executed by workers, with their metrics and checkpoints."""
