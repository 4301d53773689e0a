"""Data: built-in generators, importers, splits, caching and augmentation."""
