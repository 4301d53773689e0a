"""The overfitting verdict: train against test (and validation) accuracy, in words."""

from __future__ import annotations

GAP_OVERFIT = 5.0  # points of accuracy between train and test that count as overfitting
LOW_ACCURACY = 70.0  # below this on train, the model has not learned the task


def overfitting_verdict(train_acc: float, test_acc: float, val_acc: float | None = None) -> str:
    """One sentence: overfitting, underfitting or good fit, with the numbers and what to try.

    Args:
        train_acc: accuracy on the training split, as a fraction in [0, 1].
        test_acc: accuracy on the test split, as a fraction.
        val_acc: accuracy on the validation split, if there is one.
    """
    train, test = 100 * train_acc, 100 * test_acc
    gap = train - test
    numbers = f"train {train:.1f}% vs test {test:.1f}%"
    if val_acc is not None:
        numbers += f" (validation {100 * val_acc:.1f}%)"
    if train < LOW_ACCURACY:
        both = "both low" if test < LOW_ACCURACY else "train accuracy low"
        return f"{numbers}: underfitting, {both}; try a bigger model, more epochs or a higher learning rate"
    if gap >= GAP_OVERFIT:
        return f"{numbers}: overfitting, gap {gap:.0f} points; try more data, augmentation, dropout or L2"
    if -gap >= GAP_OVERFIT:
        # A model does not generalize better than it fits: the test split is small or unlike train.
        return (
            f"{numbers}: test {-gap:.0f} points above train, which fitting does not explain; "
            "the test split is probably small or easier than train: check data.split"
        )
    return f"{numbers}: good fit, gap {max(gap, 0.0):.0f} points"
