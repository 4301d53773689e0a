"""Plain-text pieces the commands print alike (a confusion matrix)."""

from __future__ import annotations


def print_confusion(matrix: list[list[int]], classes: list[str]) -> None:
    """Print a confusion matrix, rows the true class and columns the predicted one."""
    print("confusion  (rows: true class, columns: predicted)")
    width = max(len(str(v)) for row in matrix for v in row) + 1
    for name, row in zip(classes, matrix, strict=True):
        print(f"  {name[:12]:>12} " + "".join(f"{v:>{width}}" for v in row))
