"""Differentiable augmentation of what a discriminator sees (DiffAugment, Zhao et al. 2020).

The same random transform family is applied to real and generated images, in D's update and
in G's, so D cannot tell them apart by the transform and G's gradient passes through it. A
discriminator that only ever sees the real images as they are learns a few of their pixels by
heart; shifted and partly hidden, it has to read their shapes.

Policies (comma-separated, applied in this order):
- ``translation``: each image shifted by up to 1/8 of its size in each axis, the uncovered
  border filled with 0 (mid-grey in [-1, 1]);
- ``cutout``: a square of half the image size, at a random centre, set to 0.

Colour transforms (brightness, saturation, contrast) are left out on purpose: the domains
this project translates between differ by colour (inverted, coloured digits), and a
domain-classification head must keep seeing it.

Each transform is a batched gather and a 0/1 mask drawn per example: differentiable (the
gradient reaches the pixels that stay visible) and free of Python control flow, so it runs
inside the compiled train step under any strategy.
"""

import tensorflow as tf

POLICIES = ("translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def with_noise(images, stddev):
    """``images`` plus fresh Gaussian noise of ``stddev``; ``images`` itself when it is 0.

    On what D sees it blurs the line between real and fake; on a translation before it is
    translated back for a cycle loss it erases any low-amplitude pattern the generator could
    hide the source in (steganography, arXiv 1712.02950; Bashkirova et al., NeurIPS 2019).
    """
    if stddev <= 0:
        return images
    return images + stddev * tf.random.normal(tf.shape(images), dtype=images.dtype)


def parse_policy(text):
    """'translation,cutout' -> ('translation', 'cutout'); '' -> (); a clear error otherwise."""
    names = tuple(p.strip() for p in str(text).split(",") if p.strip())
    unknown = [p for p in names if p not in POLICIES]
    if unknown:
        raise ValueError(
            f"Unknown DiffAugment policy {', '.join(unknown)!s}: use a comma-separated subset "
            f"of {', '.join(POLICIES)} (or '' for none)."
        )
    return names


def _seed(seed):
    """None, or ``seed`` (a pair of ints or an int32 [2] tensor) as an int32 tensor."""
    return None if seed is None else tf.convert_to_tensor(seed, tf.int32)


def _shifted(images, shifts, axis):
    """``images`` moved by ``shifts`` [B] along ``axis`` (1 or 2), 0 where nothing moved in."""
    size = tf.shape(images)[axis]
    source = tf.range(size)[None, :] - shifts[:, None]  # [B, size]: the row each row reads
    inside = tf.logical_and(source >= 0, source < size)
    moved = tf.gather(images, tf.clip_by_value(source, 0, size - 1), axis=axis, batch_dims=1)
    mask = tf.cast(inside, images.dtype)
    return moved * (mask[:, :, None, None] if axis == 1 else mask[:, None, :, None])


def _fraction(size, ratio):
    """round(``ratio`` * ``size``) of a scalar int32 size, as an int32 tensor."""
    return tf.cast(tf.cast(size, tf.float32) * ratio + 0.5, tf.int32)


def _uniform_ints(batch, low, high, seed, stream):
    """[batch] int32 draws in [low, high): stateless on ``seed`` + [0, stream] when seeded."""
    if seed is None:
        return tf.random.uniform([batch], low, high, tf.int32)
    return tf.random.stateless_uniform([batch], seed + [0, stream], low, high, tf.int32)


def translation(images, ratio=TRANSLATION_RATIO, seed=None):
    """Each image shifted by a uniform integer in [-ratio*size, ratio*size] per axis.
    ``seed``: two ints for stateless draws, or None."""
    seed = _seed(seed)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    max_h, max_w = _fraction(height, ratio), _fraction(width, ratio)
    dy = _uniform_ints(batch, -max_h, max_h + 1, seed, 0)
    dx = _uniform_ints(batch, -max_w, max_w + 1, seed, 1)
    return _shifted(_shifted(images, dy, 1), dx, 2)


def cutout(images, ratio=CUTOUT_RATIO, seed=None):
    """Each image with a square of ``ratio`` times its size set to 0; its centre uniform over
    the image, so it may be clipped at the border (as in the reference implementation).
    ``seed``: two ints for stateless draws, or None."""
    seed = _seed(seed)
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    cut_h, cut_w = _fraction(height, ratio), _fraction(width, ratio)
    cy = _uniform_ints(batch, 0, height + 1 - cut_h % 2, seed, 2)
    cx = _uniform_ints(batch, 0, width + 1 - cut_w % 2, seed, 3)

    def inside(size, centre, cut):  # [B, size]: in [centre - cut // 2, centre - cut // 2 + cut)
        offset = tf.range(size)[None, :] - (centre[:, None] - cut // 2)
        return tf.logical_and(offset >= 0, offset < cut)

    hidden = tf.logical_and(
        inside(height, cy, cut_h)[:, :, None], inside(width, cx, cut_w)[:, None, :]
    )
    return images * tf.cast(tf.logical_not(hidden), images.dtype)[..., None]


TRANSFORMS = {"translation": translation, "cutout": cutout}


def diff_augment(images, policy, seed=None):
    """``images`` [B, H, W, C] through every transform of ``policy`` (names or 'a,b' text).

    ``seed``: two ints for stateless draws (tests); fresh randomness otherwise.
    """
    names = parse_policy(policy) if isinstance(policy, str) else tuple(policy)
    seed = _seed(seed)
    for i, name in enumerate(names):
        step_seed = None if seed is None else seed + [i * 16, 0]
        images = TRANSFORMS[name](images, seed=step_seed)
    return images
