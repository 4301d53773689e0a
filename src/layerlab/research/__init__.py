"""Research experiments on top of the engine: a config, trials that are ordinary runs, a report (docs/experiments.md)."""
