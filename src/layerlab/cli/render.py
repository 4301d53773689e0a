"""Plain-text pieces the commands print alike (a confusion matrix)."""

from __future__ import annotations


def print_confusion(matrix: list[list[int]], classes: list[str]) -> None:
    """Print a confusion matrix, rows the true class and columns the predicted one."""
    print("confusion  (rows: true class, columns: predicted)")
    labels = [name[:12] for name in classes]
    width = max([len(str(v)) for row in matrix for v in row] + [len(label) for label in labels]) + 1
    corner = "true \\ pred"
    print(f"  {corner:>12} " + "".join(f"{label:>{width}}" for label in labels))
    for label, row in zip(labels, matrix, strict=True):
        print(f"  {label:>12} " + "".join(f"{v:>{width}}" for v in row))
