"""DiffAugment: every transform is what it says (an exact shift with a zero border, a zeroed
square), differentiable, and a policy names only transforms that exist."""

import numpy as np
import pytest
import tensorflow as tf

from trainer.methods.diff_augment import (
    cutout,
    diff_augment,
    parse_policy,
    translation,
    with_noise,
)


def shifted(image, dy, dx):
    """``image`` [H, W, C] moved down by dy and right by dx, 0 where nothing moved in."""
    out = np.zeros_like(image)
    h, w = image.shape[:2]
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = image[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_translation_shifts_each_image_by_at_most_an_eighth_with_a_zero_border():
    x = np.random.default_rng(0).uniform(0.5, 1.0, (64, 16, 16, 3)).astype(np.float32)
    y = translation(tf.constant(x), seed=tf.constant([1, 2])).numpy()
    seen = set()
    for image, out in zip(x, y):
        matches = [
            (dy, dx)
            for dy in range(-2, 3)
            for dx in range(-2, 3)
            if np.array_equal(out, shifted(image, dy, dx))
        ]
        assert len(matches) == 1, "not a shift by at most 16/8 = 2 pixels"
        seen.add(matches[0])
    assert len(seen) > 10  # the 25 shifts are all drawn, not one for the batch


def test_cutout_zeroes_one_square_of_half_the_size_and_keeps_the_rest():
    x = np.random.default_rng(1).uniform(0.5, 1.0, (64, 16, 16, 1)).astype(np.float32)
    y = cutout(tf.constant(x), seed=(3, 4)).numpy()
    for image, out in zip(x, y):
        hidden = out[..., 0] == 0
        np.testing.assert_array_equal(out[~hidden], image[~hidden])
        rows, cols = np.nonzero(hidden.any(axis=1))[0], np.nonzero(hidden.any(axis=0))[0]
        assert hidden.sum() == len(rows) * len(cols)  # a rectangle ...
        assert len(rows) <= 8 and len(cols) <= 8  # ... of at most 8 x 8, clipped at the border
        if 0 < rows[0] and rows[-1] < 15:
            assert len(rows) == 8
    assert len({int((o == 0).sum()) for o in y}) > 1  # clipped at some borders, whole at others


def test_the_transforms_pass_gradients_to_the_pixels_that_stay_visible():
    x = tf.constant(np.random.default_rng(2).uniform(0.5, 1.0, (8, 16, 16, 3)), tf.float32)
    seed = tf.constant([5, 6])
    with tf.GradientTape() as tape:
        tape.watch(x)
        out = diff_augment(x, "translation,cutout", seed=seed)
        total = tf.reduce_sum(out)
    grad = tape.gradient(total, x).numpy()
    # Sum is linear: each input pixel's gradient is 1 if it lands visible, else 0.
    assert set(np.unique(grad)) <= {0.0, 1.0}
    np.testing.assert_allclose(grad.sum(), float(tf.reduce_sum(tf.cast(out != 0, tf.float32))))
    assert 0 < grad.mean() < 1


def test_policies_are_parsed_and_unknown_ones_refused_naming_the_choices():
    assert parse_policy("") == ()
    assert parse_policy("translation, cutout") == ("translation", "cutout")
    with pytest.raises(ValueError, match="color.*translation, cutout"):
        parse_policy("translation,color")
    x = tf.ones((2, 8, 8, 3))
    assert diff_augment(x, "") is x


def test_with_noise_keeps_the_dtype_and_adds_noise_of_its_std():
    tf.random.set_seed(0)
    images = tf.zeros((8, 16, 16, 3), tf.float16)  # a mixed_float16 generator's output
    noisy = with_noise(images, 0.3)
    assert noisy.dtype == tf.float16
    assert abs(float(tf.math.reduce_std(tf.cast(noisy, tf.float32))) - 0.3) < 0.02
    assert with_noise(images, 0.0) is images
