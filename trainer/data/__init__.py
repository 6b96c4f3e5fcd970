"""Domains, data kinds and input pipelines.

``load_domain`` turns a dataset name, a domain and a split into a :class:`Domain` (a
``tf.data.Dataset`` of ``{"image": uint8 [S, S, 3], "label": int64}`` with ``-1`` for unknown
labels). Every picture goes through the one preprocessing of :mod:`trainer.imaging` (shorter
side to ``image_size`` with antialiased bicubic, centre crop), whatever its source.

A method declares the batches it trains on as a data kind (``DATA``); ``make_dataset(config,
kind, split, ...)`` builds them and ``KINDS`` lists the kinds:

- ``unpaired``: ``{x_a, y_a, x_b, y_b}``, two independently shuffled domains, images float32 in
  [-1, 1]. Training batches carry no target-domain labels (``y_b`` is -1) and no source labels
  either (``y_a`` is -1) unless the run trains a UDA classifier head (``--uda``), which is
  defined to use the source labels. Evaluation batches keep both.
- ``unpaired_labeled``: ``unpaired`` batches that keep the class labels of both domains in
  training too, for a method defined to learn from a class correspondence between the domains
  (``latent_explore``'s matched pairs).
- ``images`` (``{x}``) and ``labeled`` (``{x, y}``): one domain, for noise-to-image methods
  (:mod:`trainer.data.labeled`).
- ``paired``: aligned ``{x_a, x_b, y_a, y_b}`` pairs (:mod:`trainer.data.paired`).
- ``multi_domain``: ``{x, domain, y}`` over several domain labels
  (:mod:`trainer.data.multi_domain`).

A method with several critic updates per step (``n_critic``) gets that many training batches
concatenated along the batch axis.

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

from trainer import imaging
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
    """uint8 [0, 255] -> float32 [-1, 1] inside a graph (``imaging.to_float`` in numpy)."""
    lo, hi = imaging.VALUE_RANGE
    return tf.cast(images, tf.float32) * ((hi - lo) / 255.0) + lo


def _fit(image, image_size):
    """``imaging.fit`` inside a tf.data map: the same pixels a runtime computes from a file."""
    channels = image.shape[-1]
    if image.shape[0] == image_size and image.shape[1] == image_size:
        return image
    out = tf.numpy_function(lambda x: imaging.fit(x, image_size), [image], tf.uint8, stateful=False)
    return tf.ensure_shape(out, (image_size, image_size, channels))


def _from_tfds(builder, split, image_size, keep_labels):
    ds = builder.as_dataset(split=split, shuffle_files=False)
    has_labels = keep_labels and "label" in builder.info.features
    num_classes = builder.info.features["label"].num_classes if has_labels else 0

    def convert(example):
        image = example["image"]
        image = _fit(image, image_size)
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        label = tf.cast(example["label"], tf.int64) if has_labels else tf.constant(-1, tf.int64)
        return {"image": image, "label": label}

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


def _unlabelled_files(paths, read, image_size):
    """``{"image": uint8 [S, S, 3], "label": -1}`` of ``read(path)`` over ``paths``, in order."""

    def load(path):
        return read(path.decode())

    return tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: {
            "image": tf.ensure_shape(
                tf.numpy_function(load, [p], tf.uint8, stateful=False),
                (image_size, image_size, 3),
            ),
            "label": tf.constant(-1, tf.int64),
        },
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def load_domain(dataset, domain, split, *, data_dir=None, image_size=32, strict_images=False):
    """The ``split`` images of ``domain`` in ``dataset``, as uint8 at ``image_size``."""
    if dataset == "digits":
        builder = digits_builder(domain, data_dir)
        ds, n, has_labels, k = _from_tfds(builder, split, image_size, keep_labels=True)
        return Domain(domain, ds, n, has_labels, k)
    if dataset == "folder":
        from trainer.data import paired

        if (
            domain in paired.HALVES
            and paired.is_pair_folder(data_dir, split)
            and not folders.has_domain(data_dir, domain, split)
        ):
            paths, read = paired.folder_half(data_dir, domain, split, image_size)
        else:
            paths, _ = folders.scan(
                folders.domain_dir(data_dir, domain, split), strict=strict_images
            )

            def read(path):
                return folders.load_image(path, image_size)

        return Domain(domain, _unlabelled_files(paths, read, image_size), len(paths), False, 0)
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


def without_labels(domain):
    """``domain`` with every label replaced by -1 (unknown)."""
    ds = domain.dataset.map(lambda ex: {"image": ex["image"], "label": tf.constant(-1, tf.int64)})
    return dataclasses.replace(domain, dataset=ds, has_labels=False)


def uses_source_labels(config):
    """Whether training may see domain A's labels: a UDA run (``--uda``), whose classifier
    head is defined to learn from the source labels, or a method declaring ``SOURCE_LABELS``
    (DTN's source-domain classifier f, XGAN's teacher). Target labels never."""
    from trainer.methods import registry

    method = registry.METHODS.get(config.method)
    declared = method is not None and method.reads_source_labels(config.hparams)
    return declared or bool(config.hparams.get("uda", False))


def config_domain(config, domain, split):
    """``load_domain`` with the dataset, data_dir, image size and strictness of ``config``."""
    d = config.data
    return load_domain(
        d.dataset,
        domain,
        split,
        data_dir=d.data_dir,
        image_size=d.image_size,
        strict_images=d.strict_images,
    )


def _unpaired(config, split, *, batch_size, training, seed, keep_labels=False):
    d = config.data
    a = config_domain(config, d.domain_a, split)
    b = config_domain(config, d.domain_b, split)
    if training and not keep_labels:
        b = without_labels(b)
        if not uses_source_labels(config):
            a = without_labels(a)
        # One step of a method with n_critic critic updates takes that many batches at once.
        batch_size *= labeled.updates_per_step(config)
    return unpaired_dataset(
        a,
        b,
        batch_size=batch_size,
        seed=seed,
        augment=d.augment and training,
        flip=d.flip and training,
        image_size=d.image_size,
        shuffle_buffer=d.shuffle_buffer,
        repeat=training,
    )


def _unpaired_labeled(config, split, *, batch_size, training, seed):
    return _unpaired(
        config, split, batch_size=batch_size, training=training, seed=seed, keep_labels=True
    )


# Data kinds a method can declare as its ``DATA``: name -> builder(config, split, *, batch_size,
# training, seed) returning a batched tf.data.Dataset. The kinds of the conditional family live
# in their own modules, which read domains through this one (imported here, after it is set up).
from trainer.data import labeled, multi_domain, paired  # noqa: E402

KINDS = {
    "unpaired": _unpaired,
    "unpaired_labeled": _unpaired_labeled,
    "images": labeled.images_dataset,
    "labeled": labeled.labeled_dataset,
    "paired": paired.paired_dataset,
    "multi_domain": multi_domain.multi_domain_dataset,
}


def make_dataset(config, kind, split, *, batch_size, training, seed):
    """The batches of data kind ``kind`` (a method's ``DATA``) from ``split`` of the configured
    domains: shuffled, augmented and repeated when ``training``, one pass in order otherwise."""
    builder = KINDS.get(kind)
    if builder is None:
        raise ValueError(
            f"Unknown data kind {kind!r} (declared as DATA by method {config.method}): the "
            f"data kinds are {', '.join(sorted(KINDS))}."
        )
    return builder(config, split, batch_size=batch_size, training=training, seed=seed)


def default_data_dir():
    import tensorflow_datasets as tfds

    return os.path.expanduser(tfds.core.constants.DATA_DIR)
