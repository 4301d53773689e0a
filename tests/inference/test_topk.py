"""One top-k implementation for the CLI's predict and the lab's predict endpoint."""

from types import SimpleNamespace

import pytest
import torch

from layerlab.inference.predict import top_classes


def trained_stub():
    model = torch.nn.Linear(2, 3, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    return SimpleNamespace(model=model, classes=["a", "b", "c"])


def test_top_classes_orders_by_probability_and_can_list_every_class():
    x = torch.tensor([[3.0, 0.0], [0.0, 3.0]])
    first, second = top_classes(trained_stub(), x, 2, probabilities=True)
    assert [t["class"] for t in first["top"]] == ["a", "b"] and [t["class"] for t in second["top"]] == [
        "b",
        "a",
    ]
    assert sum(first["probabilities"]) == pytest.approx(1.0, abs=1e-5) and len(first["probabilities"]) == 3
    (only,) = top_classes(trained_stub(), x[:1], 10)
    assert len(only["top"]) == 3 and "probabilities" not in only


def test_the_server_predict_path_uses_it():
    from layerlab.apps.runs import predict

    (result,) = predict.probabilities(trained_stub(), torch.tensor([[0.0, 3.0]]), 1)
    assert result["top"][0]["class"] == "b" and len(result["probabilities"]) == 3
