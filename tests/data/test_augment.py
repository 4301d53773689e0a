"""Augmenter: shapes kept, off when unconfigured, driven by torch's global RNG."""

from __future__ import annotations

import torch

from layerlab.data.augment import Augmenter
from layerlab.data.config import AugmentConfig

EVERYTHING = AugmentConfig(shift=2, crop=1, hflip=True, vflip=True, rotate=10, brightness=0.2, noise=0.1)


def batch(n=8, c=3, h=16, w=12):
    return torch.arange(n * c * h * w, dtype=torch.float32).reshape(n, c, h, w) / (n * c * h * w)


def test_every_transform_keeps_shape_and_dtype():
    x = batch()
    out = Augmenter(EVERYTHING)(x)
    assert out.shape == x.shape and out.dtype == x.dtype
    assert not torch.equal(out, x)
    assert torch.equal(x, batch())  # the input is not modified in place


def test_off_returns_the_batch_unchanged():
    x = batch()
    augmenter = Augmenter(AugmentConfig())
    assert not augmenter.enabled and augmenter(x) is x


def test_eval_mode_is_off_and_draws_nothing():
    x = batch()
    augmenter = Augmenter(EVERYTHING).eval()
    state = torch.get_rng_state()
    assert augmenter(x) is x
    assert torch.equal(state, torch.get_rng_state())  # evaluation does not move the training RNG
    assert not torch.equal(augmenter.train()(x), x)


def test_global_rng_makes_it_reproducible():
    x = batch()
    torch.manual_seed(7)
    first = Augmenter(EVERYTHING)(x)
    torch.manual_seed(7)
    second = Augmenter(EVERYTHING)(x)
    assert torch.equal(first, second)
    state = torch.get_rng_state()  # what the trainer checkpoints
    third = Augmenter(EVERYTHING)(x)
    torch.set_rng_state(state)
    assert torch.equal(third, Augmenter(EVERYTHING)(x))


def test_shift_moves_whole_pixels_with_zero_fill():
    x = torch.rand(32, 1, 6, 6) + 1.0  # no zeros in the input
    out = Augmenter(AugmentConfig(shift=1))(x)
    for original, moved in zip(x, out, strict=True):
        # some shift in -1..1 each way reproduces the output exactly
        matches = []
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                expected = torch.zeros_like(original)
                ys, yd = (slice(0, 6 - dy), slice(dy, 6)) if dy >= 0 else (slice(-dy, 6), slice(0, 6 + dy))
                xs, xd = (slice(0, 6 - dx), slice(dx, 6)) if dx >= 0 else (slice(-dx, 6), slice(0, 6 + dx))
                expected[:, yd, xd] = original[:, ys, xs]
                matches.append(torch.allclose(moved, expected, atol=1e-6))
        assert any(matches)


def test_flips_only_flip():
    x = batch(n=64, c=1, h=4, w=4)
    out = Augmenter(AugmentConfig(hflip=True))(x)
    flipped = [torch.equal(o, i.flip(-1)) for o, i in zip(out, x, strict=True)]
    kept = [torch.equal(o, i) for o, i in zip(out, x, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)


def test_crop_zeroes_a_border():
    out = Augmenter(AugmentConfig(crop=2))(torch.ones(4, 1, 10, 10))
    assert out[:, :, :2].abs().sum() == 0 and out[:, :, :, -2:].abs().sum() == 0


def test_vectors_get_noise_only():
    x = torch.zeros(100, 5)
    assert torch.equal(Augmenter(AugmentConfig(hflip=True, shift=3))(x), x)
    noisy = Augmenter(AugmentConfig(noise=0.5))(x)
    assert noisy.shape == x.shape and 0.4 < noisy.std().item() < 0.6


def test_a_crop_or_shift_larger_than_the_image_is_a_config_error():
    import pytest

    from layerlab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="leave nothing of 8x8 images"):
        Augmenter(AugmentConfig(crop=4))(torch.zeros(2, 1, 8, 8))
    with pytest.raises(ConfigError, match="leave nothing"):
        Augmenter(AugmentConfig(shift=8))(torch.zeros(2, 1, 8, 8))
    assert Augmenter(AugmentConfig(crop=3))(torch.zeros(2, 1, 8, 8)).shape == (2, 1, 8, 8)
