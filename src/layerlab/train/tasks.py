"""What a run learns to predict (``train.task``): class scores, values, or its own input.

``classification`` (the default) learns class labels; ``regression`` learns a float vector per example
(a source gives float ``y (N, K)`` and names its K values in ``classes``); ``reconstruction`` learns its
own input (an autoencoder), the clean input when ``data.noise`` corrupts the training batches. A
``Task`` gives the trainer each split's targets, the loss, the evaluation of a split (loss, accuracy or
MSE / MAE), the check of the network's output and the verdict; ``code_penalty`` is the L1 penalty on a
code layer's activations (``train.code_l1``: sparse overcomplete codes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from layerlab.core.errors import ConfigError, DataError

CLASSIFICATION, REGRESSION, RECONSTRUCTION = "classification", "regression", "reconstruction"
LOSSES = {
    CLASSIFICATION: ("cross_entropy", "hinge", "squared_hinge", "mse"),
    REGRESSION: ("mse", "l1", "huber"),
    RECONSTRUCTION: ("mse", "bce", "l1"),
}
OVERFIT_RATIO = 1.5  # test loss this many times the train loss counts as overfitting


def check_task_config(train, where: str) -> None:
    """ConfigErrors for a loss or a monitored metric the task cannot have (``train`` is a TrainConfig)."""
    task, loss = train.task, train.loss
    if loss not in LOSSES[task]:
        raise ConfigError(
            f"loss '{loss}' does not fit a {task} task",
            hint=f"a {task} task takes loss {' | '.join(LOSSES[task])}, e.g. --set {where}.loss={LOSSES[task][0]}",
            where=f"{where}.loss",
        )
    metric = train.early_stopping.metric
    if task != CLASSIFICATION and metric.endswith("accuracy"):
        raise ConfigError(
            f"a {task} task has no accuracy to monitor ({metric})",
            hint=f"monitor a loss: {where}.early_stopping.metric=val_loss (the checkpoint metric too)",
            where=f"{where}.early_stopping.metric",
        )


def check_experiment(cfg) -> None:
    """Checks that need two sections (``cfg`` is an ExperimentConfig)."""
    task = cfg.train.task
    if task == RECONSTRUCTION and cfg.data.augment.enabled:
        raise ConfigError(
            "data.augment transforms the input only: a reconstruction target would no longer match it",
            hint="remove data.augment; corrupt the training inputs with data.noise instead (denoising)",
            where="data.augment",
        )
    if cfg.data.source == "not-so-clevr":  # the same source classifies (target index) or regresses
        wants = REGRESSION if cfg.data.target == "coordinates" else CLASSIFICATION
        if task in (CLASSIFICATION, REGRESSION) and task != wants:
            fix = "train.task: regression (loss mse)" if wants == REGRESSION else "data.target: coordinates"
            raise ConfigError(
                f"not-so-clevr with data.target {cfg.data.target} is a {wants} task, not {task}",
                hint=f"set {fix}",
                where="train.task",
            )


class Task:
    """One kind of run: its targets, loss, evaluation, output check and verdict.

    Args:
        name: ``classification``, ``regression`` or ``reconstruction``.
        loss: ``train.loss`` (``bce`` makes the network's outputs logits of values in [0, 1]).
    """

    def __init__(self, name: str, loss: str = "cross_entropy"):
        self.name, self.loss = name, loss

    @property
    def classifies(self) -> bool:
        """Whether the run has classes, accuracy, a confusion matrix and top-k predictions."""
        return self.name == CLASSIFICATION

    def output(self, out: torch.Tensor) -> torch.Tensor:
        """The prediction a network output means: the values themselves (sigmoid of bce's logits)."""
        return torch.sigmoid(out) if self.loss == "bce" else out

    def targets(self, split: str, x, y: torch.Tensor, classes: list[str]):
        """What the network learns for one split: labels, values, or the inputs themselves."""
        if self.name == RECONSTRUCTION:
            return x
        if self.name == REGRESSION:
            if not y.is_floating_point():
                raise DataError(
                    "this source gives class labels, not values to regress",
                    hint="use a source with float targets y (N, K), or train.task: classification",
                    where="train.task",
                )
            return (y[:, None] if y.dim() == 1 else y.reshape(len(y), -1)).float()
        if y.is_floating_point():
            raise DataError(
                "this source gives float values, not class labels",
                hint="set train.task: regression (loss mse) to learn them",
                where="train.task",
            )
        y = y.long()
        if len(y) and (int(y.min()) < 0 or int(y.max()) >= len(classes)):
            raise DataError(
                f"{split} labels range over {int(y.min())}..{int(y.max())} but there are {len(classes)} classes",
                hint="check data.label_map or data.class_names",
                where="data",
            )
        return y

    def output_size(self, classes: list[str], input_shape: list[int], train_targets) -> int:
        """What ``out: classes`` means in the network: classes, values per example, or input values."""
        if self.name == CLASSIFICATION:
            return len(classes)
        if self.name == REGRESSION:
            return int(train_targets.shape[1])
        return math.prod(input_shape)

    def check_targets(self, targets) -> None:
        """bce learns values in [0, 1]: a DataError for targets outside."""
        if self.loss != "bce" or not isinstance(targets, torch.Tensor) or not len(targets):
            return
        low, high = float(targets.min()), float(targets.max())
        if low < 0 or high > 1:
            raise DataError(
                f"loss bce learns values in [0, 1] but the targets range over [{low:.3g}, {high:.3g}]",
                hint="set data.normalize: unit (or none for data already in [0, 1]), or loss: mse",
                where="train.loss",
            )

    def check_output(self, output_shape, input_shape, train_targets) -> None:
        """A ConfigError when the network's output cannot be compared with the targets."""
        if self.name == CLASSIFICATION or output_shape is None:
            return
        want = list(input_shape) if self.name == RECONSTRUCTION else [int(train_targets.shape[1])]
        if list(output_shape) != want:
            fix = (
                f"end the decoder with {{kind: linear, out: {math.prod(want)}}} and "
                f"{{kind: unflatten, shape: {want}}}, or use preset autoencoder"
                if self.name == RECONSTRUCTION
                else f"end with {{kind: linear, out: {want[0]}}}"
            )
            raise ConfigError(
                f"the network's output is {list(output_shape)} but a {self.name} task needs {want}",
                hint=fix,
                where="model",
            )

    def make_loss(self, train, num_classes: int):
        """``(outputs, targets) -> scalar``; a classification's loss from ``train.losses``."""
        if self.name == CLASSIFICATION:
            from layerlab.train.losses import make_loss

            return make_loss(train, num_classes)
        return {
            "mse": F.mse_loss,
            "l1": F.l1_loss,
            "huber": F.huber_loss,
            "bce": F.binary_cross_entropy_with_logits,
        }[self.loss]

    @torch.no_grad()
    def evaluate(self, model, x, t, loss_fn, *, precision=None, batch_size: int = 512):
        """``(loss, accuracy, predictions)`` of a classification, ``(loss, None, {"mse", "mae"})`` otherwise
        (MSE and MAE per value, of ``output``); ``(None, None, None)`` for an empty split."""
        from layerlab.train.metrics import VIEW_BATCH_BYTES, evaluate_split

        if self.classifies:
            return evaluate_split(model, x, t, loss_fn, batch_size, precision)
        if len(x) == 0:
            return None, None, None
        if not isinstance(x, torch.Tensor):
            batch_size = max(1, min(batch_size, VIEW_BATCH_BYTES // (4 * max(1, x.numel() // len(x)))))
        model.eval()
        loss = torch.zeros((), dtype=torch.float64)
        squared = torch.zeros((), dtype=torch.float64)
        absolute = torch.zeros((), dtype=torch.float64)
        values = 0
        for i in range(0, len(x), batch_size):
            index = torch.arange(i, min(i + batch_size, len(x)))
            xb, tb = x[index], t[index]
            out = model(xb) if precision is None else precision.forward(model, xb)
            out = out.float()
            loss += loss_fn(out, tb).double().cpu() * len(tb)
            error = self.output(out) - tb
            squared += (error * error).sum().double().cpu()
            absolute += error.abs().sum().double().cpu()
            values += error.numel()
        return (loss / len(x)).item(), None, {"mse": squared.item() / values, "mae": absolute.item() / values}

    def verdict(self, train_loss, test_loss, val_loss=None) -> str:
        """One sentence on the fit from the losses (a classification's uses accuracy: ``train.verdict``)."""
        if train_loss is None or test_loss is None:
            return "no test split: set data.split.test above 0 for an honest verdict"
        numbers = f"train loss {train_loss:.4g} vs test {test_loss:.4g}"
        if val_loss is not None:
            numbers += f" (validation {val_loss:.4g})"
        if test_loss > OVERFIT_RATIO * max(train_loss, 1e-12):
            return f"{numbers}: overfitting, test loss {test_loss / max(train_loss, 1e-12):.1f}x train; try more data, dropout or L2"
        return f"{numbers}: good fit"


def task_of(train) -> Task:
    """The Task of a train section (a TrainConfig, or its mapping from a stored config)."""
    if isinstance(train, dict):
        return Task(train.get("task") or CLASSIFICATION, train.get("loss") or "cross_entropy")
    return Task(train.task, train.loss)


def code_penalty(model: torch.nn.Module, code_l1) -> Callable[[], torch.Tensor] | None:
    """``weight * mean |h|`` of the named code layer's last training activations ``h``, or None.

    A forward hook keeps the layer's output of each training forward pass (with gradients on), so the
    penalty the loop adds after the forward pass is that of the current batch.

    Args:
        model: the network (its sub-modules are named after the spec's layers).
        code_l1: ``train.code_l1`` (``layer``, ``weight``), or None.
    """
    if code_l1 is None:
        return None
    modules = dict(model.named_modules())
    module = modules.get(code_l1.layer)
    if module is None or not code_l1.layer:
        names = [n for n in modules if n and "." not in n]
        shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise ConfigError(
            f"there is no layer named '{code_l1.layer}' for the code penalty",
            hint=f"name one of the network's layers: {shown}",
            where="train.code_l1.layer",
        )
    seen: dict[str, torch.Tensor] = {}

    def keep(_module, _inputs, output) -> None:
        if torch.is_grad_enabled():
            seen["code"] = output

    module.register_forward_hook(keep)
    weight = float(code_l1.weight)

    def penalty() -> torch.Tensor:
        code = seen.pop("code", None)
        if code is None:
            return torch.zeros((), device=next(model.parameters()).device)
        return weight * code.abs().mean()

    return penalty


def combine_penalties(*penalties):
    """One penalty summing the given ones (None entries skipped), or None when there is none."""
    present = [p for p in penalties if p is not None]
    if len(present) <= 1:
        return present[0] if present else None
    return lambda: sum(p() for p in present)
