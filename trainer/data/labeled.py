"""Data kinds of the noise-to-image methods: ``images`` (GAN) and ``labeled`` (cGAN).

Both read the one domain ``--domain_a`` of ``--dataset``:

- ``images``: batches ``{"x": float32 [B, S, S, 3] in [-1, 1]}``.
- ``labeled``: batches ``{"x", "y": int64 [B] class ids}``; a domain without class labels is
  refused with the fix.

Builders have the signature every data kind has, ``(config, split, *, batch_size, training,
seed) -> tf.data.Dataset``. Training streams are shuffled (seeded) and repeated, and a method
that takes several critic updates per step (its ``n_critic`` hyperparameter) receives that many
batches concatenated along the batch axis, to split in its ``train_step``; evaluation streams
are read once, in order, in batches of ``batch_size``.
"""

import tensorflow as tf

from trainer import data as data_lib


def updates_per_step(config):
    """Batches one training step consumes: the method's ``n_critic`` (1 when it has none)."""
    n = int(dict(config.hparams).get("n_critic", 1) or 1)
    if n < 1:
        raise ValueError(f"--n_critic must be >= 1, got {n}.")
    return n


def load(config, domain, split):
    """A :class:`trainer.data.Domain` of the configured dataset at the configured size."""
    d = config.data
    return data_lib.load_domain(
        d.dataset,
        domain,
        split,
        data_dir=d.data_dir,
        image_size=d.image_size,
        strict_images=d.strict_images,
    )


def to_float(image):
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def shuffled(ds, num_examples, config, seed, training):
    """Shuffles (seeded) and repeats ``ds`` for training; leaves it alone for evaluation."""
    if not training:
        return ds
    buffer = max(min(config.data.shuffle_buffer, num_examples), 1)
    return ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True).repeat()


def batched(ds, config, batch_size, training):
    """Training: ``batch_size * updates_per_step`` examples, full batches only; else as is."""
    if training:
        ds = ds.batch(batch_size * updates_per_step(config), drop_remainder=True)
    else:
        ds = ds.batch(batch_size)
    return ds.prefetch(tf.data.AUTOTUNE)


def images_dataset(config, split, *, batch_size, training, seed):
    """``--domain_a`` images as ``{"x"}`` batches (the ``images`` kind)."""
    domain = load(config, config.data.domain_a, split)
    ds = shuffled(domain.dataset, domain.num_examples, config, seed, training)
    ds = ds.map(lambda ex: {"x": to_float(ex["image"])}, num_parallel_calls=tf.data.AUTOTUNE)
    return batched(ds, config, batch_size, training)


def labeled_dataset(config, split, *, batch_size, training, seed):
    """``--domain_a`` images with their class ids as ``{"x", "y"}`` batches (``labeled``)."""
    d = config.data
    domain = load(config, d.domain_a, split)
    if not domain.has_labels:
        raise ValueError(
            f"--method={config.method} is conditioned on class labels, but domain "
            f"{d.domain_a!r} of --dataset={d.dataset} has none. Use a labelled domain (the "
            "embedded digit domains, or a TFDS dataset with a 'label' feature)."
        )
    ds = shuffled(domain.dataset, domain.num_examples, config, seed, training)
    ds = ds.map(
        lambda ex: {"x": to_float(ex["image"]), "y": tf.cast(ex["label"], tf.int64)},
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return batched(ds, config, batch_size, training)
