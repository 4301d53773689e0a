"""Losses, penalties, optimizers, schedules, metrics and the verdict."""

import math

import pytest
import torch

from layerlab.train.callbacks import EarlyStopping
from layerlab.train.config import TrainConfig, experiment_from_mapping
from layerlab.train.losses import make_loss, make_penalty, multiclass_hinge
from layerlab.train.metrics import classification_report, confusion_matrix
from layerlab.train.optim import base_lr, make_optimizer, make_scheduler, scheduler_step
from layerlab.train.verdict import overfitting_verdict


def reference_svm(scores, y, margin=1.0, squared=False):
    total = 0.0
    for s, t in zip(scores.tolist(), y.tolist(), strict=True):
        for j, sj in enumerate(s):
            if j != t:
                m = max(0.0, sj - s[t] + margin)
                total += m * m if squared else m
    return total / len(y)


@pytest.mark.parametrize("squared", [False, True])
def test_multiclass_hinge_matches_the_textbook_sum(squared):
    torch.manual_seed(0)
    scores, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 2])
    got = multiclass_hinge(scores, y, 1.0, squared).item()
    assert got == pytest.approx(reference_svm(scores, y, 1.0, squared), rel=1e-5)


@pytest.mark.parametrize("loss", ["cross_entropy", "hinge", "squared_hinge", "mse"])
def test_every_loss_is_finite_and_differentiable(loss):
    fn = make_loss(TrainConfig(loss=loss, label_smoothing=0.1), 3)
    out = torch.randn(5, 3, requires_grad=True)
    value = fn(out, torch.tensor([0, 1, 2, 1, 0]))
    value.backward()
    assert math.isfinite(value.item()) and out.grad is not None


def test_penalty_is_l1_plus_l2_of_weights_only():
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.0]]))
        model.bias.fill_(100.0)
    penalty = make_penalty(TrainConfig(l1=0.1, l2=0.01), model)
    # by hand: sum|w| = 1 + 2 + 0.5 = 3.5, sum w^2 = 1 + 4 + 0.25 = 5.25; L2 is 1/2 * l2 * sum w^2
    assert penalty().item() == pytest.approx(0.1 * 3.5 + 0.5 * 0.01 * 5.25)
    assert make_penalty(TrainConfig(), model) is None


def test_l2_gradient_equals_sgd_weight_decay():
    """d/dW (1/2 l2 W^2) = l2 W: an SGD step with l2 equals one with weight_decay (bias-free model)."""
    torch.manual_seed(0)
    x, y = torch.randn(8, 3), torch.randint(0, 2, (8,))
    models = [torch.nn.Linear(3, 2, bias=False) for _ in range(2)]
    models[1].load_state_dict(models[0].state_dict())
    configs = [
        TrainConfig(optimizer="sgd", momentum=0.0, lr=0.1, l2=0.3),
        TrainConfig(optimizer="sgd", momentum=0.0, lr=0.1, weight_decay=0.3),
    ]
    for model, cfg in zip(models, configs, strict=True):
        optimizer = make_optimizer(cfg, [{"params": list(model.parameters()), "lr_factor": 1.0}])
        penalty = make_penalty(cfg, model)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        (loss + penalty() if penalty else loss).backward()
        optimizer.step()
    assert torch.allclose(models[0].weight, models[1].weight, atol=1e-7)


@pytest.mark.parametrize("name", ["sgd", "rmsprop", "adam", "adamw"])
def test_optimizers_scale_group_lrs(name):
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2))
    opt = make_optimizer(
        TrainConfig(optimizer=name, lr=0.1, nesterov=True),
        [{"params": [a], "lr_factor": 1.0}, {"params": [b], "lr_factor": 0.1}],
    )
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.01])


@pytest.mark.parametrize(
    "schedule,expected",
    [
        ({"kind": "step", "step_size": 2, "gamma": 0.5}, [1.0, 0.5, 0.5, 0.25]),
        ({"kind": "cosine"}, [math.cos(math.pi * e / 4) * 0.5 + 0.5 for e in range(1, 5)]),
        ({"kind": "plateau", "patience": 0, "gamma": 0.5}, [1.0, 0.5, 0.25, 0.125]),
    ],
)
def test_schedules_keep_group_ratios(schedule, expected):
    cfg = experiment_from_mapping({"train": {"lr": 1.0, "epochs": 4, "schedule": schedule}}).train
    p, q = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = make_optimizer(cfg, [{"params": [p], "lr_factor": 1.0}, {"params": [q], "lr_factor": 0.1}])
    sched = make_scheduler(cfg, opt)
    seen = []
    for _ in range(4):
        opt.step()
        scheduler_step(sched, 1.0)  # a flat loss: plateau decays every epoch with patience 0
        seen.append(base_lr(opt))
        assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * opt.param_groups[0]["lr"])
    assert seen == pytest.approx(expected)


def test_early_stopping_counts_and_survives_state_round_trip():
    es = EarlyStopping("val_accuracy", patience=2)
    es.on_epoch_end(None, 1, {"val_accuracy": 0.5})
    es.on_epoch_end(None, 2, {"val_accuracy": 0.4})
    again = EarlyStopping("val_accuracy", patience=2)
    again.load_state_dict(es.state_dict())
    assert not again.should_stop()
    again.on_epoch_end(None, 3, {"val_accuracy": 0.45})
    assert again.should_stop() and again.stopped_epoch == 3


def test_confusion_matrix_and_many_class_note():
    y, pred = torch.tensor([0, 0, 1, 2]), torch.tensor([0, 1, 1, 0])
    assert confusion_matrix(y, pred, 3) == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    report = classification_report(y, pred, ["a", "b", "c"])
    assert report["per_class_accuracy"] == {"a": 0.5, "b": 1.0, "c": 0.0}
    big = classification_report(y, pred, [str(i) for i in range(4096)])
    assert big["confusion_matrix"] is None and "4096 classes" in big["confusion_matrix_note"]


def test_verdicts_in_words():
    assert overfitting_verdict(0.99, 0.85) == (
        "train 99.0% vs test 85.0%: overfitting, gap 14 points; try more data, augmentation, dropout or L2"
    )
    assert "underfitting" in overfitting_verdict(0.45, 0.43)
    assert "good fit" in overfitting_verdict(0.98, 0.97, 0.975)


def test_verdict_when_test_beats_train_says_so_instead_of_a_good_fit():
    text = overfitting_verdict(0.80, 0.95)
    assert "test 15 points above train" in text and "good fit" not in text
    assert "underfitting, train accuracy low" in overfitting_verdict(0.6, 0.77)
    assert overfitting_verdict(0.99, 0.97).endswith("good fit, gap 2 points")
