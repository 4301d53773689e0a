"""What preparing data did: counts per split and class, skipped files, cache use, time."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class DataReport:
    """A summary of one ``prepare_data`` (or ``load_evaluation_data``) call, JSON-ready via ``to_dict``."""

    source: str
    kind: str
    input_shape: tuple[int, ...]
    classes: list[str]
    counts: dict[str, dict[str, int]]  # split -> class name -> examples
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    cache: str = "off"  # "hit", "miss" or "off" (generated sources are not cached)
    seconds: float = 0.0
    limit: int | None = None

    @property
    def totals(self) -> dict[str, int]:
        """Examples per split."""
        return {split: sum(per_class.values()) for split, per_class in self.counts.items()}

    def to_dict(self) -> dict:
        """Plain mapping for JSON output and run directories."""
        data = asdict(self)
        data["input_shape"] = list(self.input_shape)
        data["skipped"] = [{"path": p, "reason": r} for p, r in self.skipped]
        data["totals"] = self.totals
        return data


def class_counts(y: np.ndarray, classes: list[str], *, keep_empty: bool = True) -> dict[str, int]:
    """Examples per class name (classes with none are left out when ``keep_empty`` is False)."""
    counts = np.bincount(y, minlength=len(classes)) if len(y) else np.zeros(len(classes), dtype=np.int64)
    return {name: int(c) for name, c in zip(classes, counts, strict=False) if keep_empty or c}
