"""Domains and input pipelines.

``load_domain`` turns a dataset name, a domain and a split into a :class:`Domain` (a
``tf.data.Dataset`` of ``{"image": uint8 [S, S, 3], "label": int64}`` with ``-1`` for unknown
labels). ``unpaired_dataset`` / ``single_dataset`` batch domains for training and evaluation,
scaled to [-1, 1].

Datasets:
- ``digits``: the embedded ``digit_domains`` TFDS builder (built offline into ``data_dir``).
- ``folder``: image folders under ``data_dir`` (see :mod:`trainer.data.folders`).
- ``tfds``: every domain is a TFDS catalog name (``--domain_a=mnist --domain_b=svhn_cropped``).
- any other TFDS catalog name: domains are split suffixes, as in ``cycle_gan/horse2zebra``
  (``--domain_a=A`` reads split ``trainA``). Read from ``data_dir`` only; nothing downloads.
"""

import dataclasses
import os

import numpy as np
import tensorflow as tf
from absl import logging

from trainer.data import digit_domains, folders

DIGIT_DOMAINS = digit_domains.DOMAINS
BUILT_IN = ("digits", "folder", "tfds")


@dataclasses.dataclass
class Domain:
    name: str
    dataset: tf.data.Dataset
    num_examples: int
    has_labels: bool
    num_classes: int


def to_float(images):
    """uint8 [0, 255] -> float32 [-1, 1]."""
    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """float [-1, 1] -> uint8 (rounded, clipped)."""
    x = tf.clip_by_value((tf.cast(images, tf.float32) + 1.0) * 127.5, 0.0, 255.0)
    return tf.cast(tf.round(x), tf.uint8)


def _resize(image, image_size):
    if image.shape[0] == image_size and image.shape[1] == image_size:
        return image
    resized = tf.image.resize(image, (image_size, image_size), method="bilinear", antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _from_tfds(builder, split, image_size, keep_labels):
    ds = builder.as_dataset(split=split, shuffle_files=False)
    has_labels = keep_labels and "label" in builder.info.features
    num_classes = builder.info.features["label"].num_classes if has_labels else 0

    def convert(example):
        image = example["image"]
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        label = tf.cast(example["label"], tf.int64) if has_labels else tf.constant(-1, tf.int64)
        return {"image": _resize(image, image_size), "label": label}

    n = builder.info.splits[split].num_examples
    return ds.map(convert, num_parallel_calls=tf.data.AUTOTUNE), n, has_labels, num_classes


def digits_builder(domain, data_dir=None):
    """The prepared ``digit_domains/<domain>`` builder (built on first use, then reused)."""
    if domain not in DIGIT_DOMAINS:
        raise ValueError(
            f"Unknown digits domain {domain!r}: choose one of {', '.join(DIGIT_DOMAINS)}."
        )
    builder = digit_domains.DigitDomains(config=domain, data_dir=data_dir)
    if not builder.is_prepared():
        import tensorflow_datasets as tfds

        logging.info("Building digit domain %s into %s (once).", domain, builder.data_dir)
        tfds.disable_progress_bar()
        builder.download_and_prepare()
    return builder


def _catalog_builder(name, data_dir):
    import tensorflow_datasets as tfds

    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as e:
        raise ValueError(
            f"Unknown --dataset={name!r}: use digits, folder, or a TFDS catalog name "
            f"({str(e).splitlines()[0][:200]})."
        ) from None
    if not builder.is_prepared():
        raise FileNotFoundError(
            f"TFDS dataset {name} is not prepared in {builder.data_dir}. Nothing is downloaded "
            f"during training: build it once where there is internet with "
            f"`tfds build {name} --data_dir={data_dir or '~/tensorflow_datasets'}` and copy the "
            "folder here, or point --data_dir at a copy."
        )
    return builder


def load_domain(dataset, domain, split, *, data_dir=None, image_size=32, strict_images=False):
    """The ``split`` images of ``domain`` in ``dataset``, as uint8 at ``image_size``."""
    if dataset == "digits":
        builder = digits_builder(domain, data_dir)
        ds, n, has_labels, k = _from_tfds(builder, split, image_size, keep_labels=True)
        return Domain(domain, ds, n, has_labels, k)
    if dataset == "folder":
        folder = folders.domain_dir(data_dir, domain, split)
        paths, _ = folders.scan(folder, image_size, strict=strict_images)

        def read(path):
            return folders.load_image(path.decode(), image_size)

        ds = tf.data.Dataset.from_tensor_slices(paths).map(
            lambda p: {
                "image": tf.ensure_shape(
                    tf.numpy_function(read, [p], tf.uint8, stateful=False),
                    (image_size, image_size, 3),
                ),
                "label": tf.constant(-1, tf.int64),
            },
            num_parallel_calls=tf.data.AUTOTUNE,
        )
        return Domain(domain, ds, len(paths), False, 0)
    if dataset == "tfds":
        builder = _catalog_builder(domain, data_dir)
        splits = list(builder.info.splits)
        if split not in splits:
            raise ValueError(f"TFDS dataset {domain} has no split {split!r}: it has {splits}.")
        ds, n, has_labels, k = _from_tfds(builder, split, image_size, keep_labels=True)
        return Domain(domain, ds, n, has_labels, k)
    builder = _catalog_builder(dataset, data_dir)
    splits = list(builder.info.splits)
    name = f"{split}{domain}"
    if name not in splits:
        raise ValueError(
            f"TFDS dataset {dataset} has no split {name!r} for domain {domain!r}; its splits are "
            f"{', '.join(splits)} (pass the part after train/test as --domain_a/--domain_b)."
        )
    # Split-per-domain datasets (cycle_gan) label the domain, not a class: no class labels.
    ds, n, _, _ = _from_tfds(builder, name, image_size, keep_labels=False)
    return Domain(domain, ds, n, False, 0)


def load_arrays(dataset, domain, split, *, data_dir=None, image_size=32, limit=None):
    """(images uint8 [N, S, S, 3], labels int64 [N] or None) for evaluation and calibration."""
    d = load_domain(dataset, domain, split, data_dir=data_dir, image_size=image_size)
    ds = d.dataset if limit is None else d.dataset.take(limit)
    images, labels = [], []
    for batch in ds.batch(256).as_numpy_iterator():
        images.append(batch["image"])
        labels.append(batch["label"])
    if not images:
        raise ValueError(f"Domain {domain!r} of {dataset} has no {split} images.")
    return np.concatenate(images), (np.concatenate(labels) if d.has_labels else None)


# -- pipelines -----------------------------------------------------------------------------------


def _augment(image, seed, image_size, augment, flip):
    """Stateless (reproducible) jitter: upscale by 1/8 and random-crop back; horizontal flip."""
    x = to_float(image)
    if augment:
        big = image_size + max(image_size // 8, 2)
        x = tf.image.resize(x, (big, big), method="bilinear")
        x = tf.image.stateless_random_crop(x, (image_size, image_size, 3), seed=seed)
    if flip:
        x = tf.image.stateless_random_flip_left_right(x, seed=seed + 1)
    return x


def _stream(domain, seed, *, augment, flip, image_size, shuffle_buffer, shuffle, repeat):
    ds = domain.dataset
    if shuffle:
        ds = ds.shuffle(min(shuffle_buffer, max(domain.num_examples, 1)), seed=seed)
    if repeat:
        ds = ds.repeat()
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip((ds, seeds))
    return ds.map(
        lambda ex, s: (_augment(ex["image"], s, image_size, augment, flip), ex["label"]),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def unpaired_dataset(
    a,
    b,
    *,
    batch_size,
    seed=0,
    augment=False,
    flip=False,
    image_size=32,
    shuffle_buffer=1000,
    repeat=True,
):
    """Two independently shuffled (and, for training, repeated) streams zipped into batches
    ``{x_a, y_a, x_b, y_b}``; images float32 in [-1, 1]."""
    common = dict(augment=augment, flip=flip, image_size=image_size, shuffle_buffer=shuffle_buffer)
    sa = _stream(a, seed, shuffle=repeat, repeat=repeat, **common)
    sb = _stream(b, seed + 7919, shuffle=repeat, repeat=repeat, **common)
    ds = tf.data.Dataset.zip((sa, sb)).map(
        lambda ea, eb: {"x_a": ea[0], "y_a": ea[1], "x_b": eb[0], "y_b": eb[1]}
    )
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)


def single_dataset(
    domain,
    *,
    batch_size,
    seed=0,
    shuffle=True,
    repeat=True,
    augment=False,
    flip=False,
    image_size=32,
    shuffle_buffer=1000,
):
    """One domain as batches ``{x, y}`` in [-1, 1]."""
    s = _stream(
        domain,
        seed,
        augment=augment,
        flip=flip,
        image_size=image_size,
        shuffle_buffer=shuffle_buffer,
        shuffle=shuffle,
        repeat=repeat,
    )
    ds = s.map(lambda x, y: {"x": x, "y": y})
    return ds.batch(batch_size, drop_remainder=repeat).prefetch(tf.data.AUTOTUNE)


def default_data_dir():
    import tensorflow_datasets as tfds

    return os.path.expanduser(tfds.core.constants.DATA_DIR)
