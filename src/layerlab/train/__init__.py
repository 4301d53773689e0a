"""Training: the loop, optimizers, losses, checkpoints, metrics and fine-tuning."""
