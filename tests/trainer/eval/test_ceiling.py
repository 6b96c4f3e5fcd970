"""trainer/eval/ceiling.py (bench/judge_ceiling.py) draws a faithful translation by hand:
each target's own rendering of the source's grey digits."""

import numpy as np
import pytest

from trainer.data import digit_domains
from trainer.eval import ceiling


def test_a_full_digit_box_becomes_a_full_uci_box_with_mnists_margin():
    grey = np.zeros((2, 32, 32), np.uint8)
    grey[0, 6:26, 6:26] = 255  # fills the 20x20 box MNIST normalizes digits into
    grey[1, 6:16, 6:26] = 255  # its top half: the top 4 of 8 UCI rows
    out = digit_domains.mnist_as_uci_digits(grey)
    assert out.shape == (2, 32, 32) and out.dtype == np.uint8
    assert out[:, :4].max() == 0 and out[:, :, :4].max() == 0 and out[:, 28:].max() == 0
    assert out[0, 4:28, 4:28].min() == 255
    assert out[1, 4:14, 4:28].min() == 255 and out[1, 19:28, 4:28].max() == 0


def test_uci_digits_are_drawn_by_the_same_upscale():
    # 17 grey levels in 8x8 blocks: the upscale the UCI domain is built with.
    images, _ = digit_domains.uci_digits_arrays()
    from sklearn.datasets import load_digits

    levels = load_digits().images[:3]
    np.testing.assert_array_equal(digit_domains._upscale_uci(levels), images[:3])


def test_analytic_renders_each_target_as_it_was_built():
    grey, _ = digit_domains.source_digits("mnist", "test")
    grey = grey[:4]
    np.testing.assert_array_equal(ceiling.analytic("mnist", grey, 0)[..., 1], grey)
    np.testing.assert_array_equal(ceiling.analytic("mnist_inverted", grey, 0)[..., 0], 255 - grey)
    np.testing.assert_array_equal(
        ceiling.analytic("mnist_m", grey, 3), digit_domains.render("mnist_m", grey, 3)
    )
    thick = ceiling.analytic("mnist_thick", grey, 0)
    assert thick.shape == (4, 32, 32, 3) and (thick[..., 0] >= grey).all()
    assert (thick[..., 0] > grey).any()
    digits = ceiling.analytic("digits", grey, 0)
    np.testing.assert_array_equal(digits[..., 2], digit_domains.mnist_as_uci_digits(grey))
    with pytest.raises(ValueError, match="No analytic rendering into 'faces'"):
        ceiling.analytic("faces", grey, 0)


def test_grey_digits_are_each_domains_own():
    grey, labels = ceiling.grey_digits("mnist_5_9", "test")
    assert labels.min() == 5 and len(grey) == len(labels)
    mnist, _ = ceiling.grey_digits("mnist_m", "test")
    np.testing.assert_array_equal(mnist, digit_domains.source_digits("mnist", "test")[0])
    uci, uci_labels = ceiling.grey_digits("digits", "test")
    assert uci.shape == (digit_domains.DIGITS_TEST, 32, 32) and uci_labels.max() == 9
