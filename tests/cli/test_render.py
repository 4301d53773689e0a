"""The confusion-matrix printer: a header row of predicted classes above the rows of true ones."""

from __future__ import annotations

from layerlab.cli.render import print_confusion


def test_confusion_matrix_has_a_column_header(capsys):
    print_confusion([[5, 1], [0, 12]], ["cat", "dog"])
    lines = capsys.readouterr().out.splitlines()
    header = lines[1].split()
    assert header[-2:] == ["cat", "dog"] and "pred" in lines[1]
    assert lines[2].split() == ["cat", "5", "1"] and lines[3].split() == ["dog", "0", "12"]
    # the columns line up under their class names
    assert lines[1].index("dog") + len("dog") == lines[3].index("12") + len("12")
