"""The ``paired`` data kind: index-aligned (source, target) pairs for supervised translation.

Batches ``{"x_a": source, "x_b": target, "y_a", "y_b"}`` (float32 images in [-1, 1], int64
class ids, -1 where unknown), from one of:

- ``--dataset=digits``: the embedded digit domains rendered from the same MNIST digits
  (``mnist``, ``mnist_m``, ``mnist_inverted``, ``mnist_colored``) are index-aligned: example i
  of every one is the same digit. ``--domain_a`` is the source, ``--domain_b`` the target.
- ``--dataset=folder``: pix2pix's convention, ``DATA_DIR/train/`` and ``DATA_DIR/val/`` (or
  ``test/``) holding images with A on the left half and B on the right half.
  ``--direction=AtoB`` translates the left half into the right one, ``BtoA`` the reverse.
  A file whose width is odd, or that is not wider than it is tall (a single image, not a
  pair), is refused with its name.

Each half goes through the one preprocessing every stage uses (``trainer.imaging.fit``:
shorter side to ``--image_size`` with antialiased bicubic, centre crop). With ``--augment``,
training pairs get pix2pix's jitter (upscale by 1/8 and random-crop back) and, with ``--flip``,
mirroring; both halves of a pair get the same crop and flip.
"""

import numpy as np
import tensorflow as tf

from trainer import imaging
from trainer.data import labeled

# Digit domains built from the same MNIST images in the same order (see digit_domains).
ALIGNED_DIGIT_DOMAINS = ("mnist", "mnist_m", "mnist_inverted", "mnist_colored")
DIRECTIONS = ("AtoB", "BtoA")
# pix2pix folders: the evaluation split is val/ (its datasets ship train/ val/ [test/]).
FOLDER_SPLITS = {"train": ("train",), "test": ("test", "val"), "val": ("val", "test")}


class PairError(ValueError):
    """A file that is not an A|B side-by-side pair."""


def direction_of(config):
    direction = dict(config.hparams).get("direction", "AtoB")
    if direction not in DIRECTIONS:
        raise ValueError(f"Unknown --direction={direction!r}: choose AtoB or BtoA.")
    return direction


# -- side-by-side folders ------------------------------------------------------------------------


def pair_dir(root, split):
    """The folder of ``split`` pairs under ``root`` (``train/``; ``test/`` or ``val/``)."""
    if not root:
        raise ValueError("--dataset=folder needs --data_dir=ROOT holding train/ and val/.")
    if not tf.io.gfile.isdir(root):
        raise FileNotFoundError(f"--data_dir={root} does not exist.")
    names = FOLDER_SPLITS.get(split, (split,))
    for name in names:
        folder = f"{root.rstrip('/')}/{name}"
        if tf.io.gfile.isdir(folder):
            return folder
    raise FileNotFoundError(
        f"No {split} pairs under {root}: expected a folder {' or '.join(n + '/' for n in names)} "
        "of A|B side-by-side images (pix2pix's layout)."
    )


def list_pairs(folder):
    """Image files directly in ``folder`` (sorted), or FileNotFoundError naming it."""
    files = sorted(
        f"{folder.rstrip('/')}/{name}"
        for name in tf.io.gfile.listdir(folder)
        if imaging.is_image_file(name)
    )
    if not files:
        raise FileNotFoundError(
            f"No images in {folder} (looked for {', '.join(imaging.EXTENSIONS)} files)."
        )
    return files


def split_pair(img, name="image"):
    """A PIL image holding A|B side by side -> (A, B) PIL images; PairError if it is not one."""
    w, h = img.size
    if w % 2:
        raise PairError(
            f"{name} is {w}x{h}: an A|B pair is two images side by side, so its width must be "
            "even. Re-save it with both halves the same width."
        )
    if w <= h:
        raise PairError(
            f"{name} is {w}x{h}, not wider than tall: it looks like a single image, not an A|B "
            "pair (A on the left half, B on the right half, e.g. 512x256)."
        )
    half = w // 2
    return img.crop((0, 0, half, h)), img.crop((half, 0, w, h))


def load_pair(path, image_size, direction="AtoB"):
    """One A|B file -> uint8 [2, S, S, 3] (source, target) for ``direction``."""
    with tf.io.gfile.GFile(path, "rb") as f:
        img = imaging.open_image(f.read(), name=path)
    a, b = split_pair(img, path)
    a, b = imaging.fit(a, image_size), imaging.fit(b, image_size)
    pair = (a, b) if direction == "AtoB" else (b, a)
    return np.stack([np.asarray(p, np.uint8) for p in pair])


def check_pairs(paths):
    """Reads every header once: PairError names the first file that is not a pair."""
    from PIL import Image

    for path in paths:
        with tf.io.gfile.GFile(path, "rb") as f, Image.open(f) as img:
            split_pair(img, path)


def folder_pairs(config, split):
    """(uint8 pair dataset of [2, S, S, 3], number of pairs) from a side-by-side folder."""
    d = config.data
    paths = list_pairs(pair_dir(d.data_dir, split))
    check_pairs(paths)
    size, direction = d.image_size, direction_of(config)

    def read(path):
        return load_pair(path.decode(), size, direction)

    ds = tf.data.Dataset.from_tensor_slices(paths).map(
        lambda p: tf.ensure_shape(
            tf.numpy_function(read, [p], tf.uint8, stateful=False), (2, size, size, 3)
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )
    unknown = tf.constant(-1, tf.int64)
    ds = ds.map(lambda pair: {"a": pair[0], "b": pair[1], "y_a": unknown, "y_b": unknown})
    return ds, len(paths)


# The halves of side-by-side pairs, as domains of their own: evaluation judges, calibration
# and sample grids read a paired folder's images like any other domain's, and the halves of
# one split stay index-aligned (the same sorted files).
HALVES = ("A", "B")


def is_pair_folder(root, split):
    """Whether ``root`` has pix2pix's layout (a ``train/``, ``val/`` or ``test/`` of pairs)."""
    try:
        pair_dir(root, split)
    except (FileNotFoundError, ValueError):
        return False
    return True


def folder_half(root, half, split, image_size):
    """(sorted pair files of ``root``'s ``split``, a reader of one file's ``half``: "A" = left,
    "B" = right, uint8 [S, S, 3])."""
    if half not in HALVES:
        raise ValueError(
            f"A folder of A|B pairs has the domains A (left halves) and B (right halves), "
            f"not {half!r}."
        )
    paths = list_pairs(pair_dir(root, split))
    check_pairs(paths)
    index = HALVES.index(half)

    def read(path):
        return load_pair(path, image_size)[index]

    return paths, read


def folder_domains(direction):
    """(source, target) halves of a paired folder for ``--direction``."""
    return HALVES if direction == "AtoB" else HALVES[::-1]


# -- aligned digit domains -----------------------------------------------------------------------


def digit_pairs(config, split):
    """(pair dataset, count) zipping two index-aligned digit domains; labels must agree."""
    d = config.data
    for flag, name in (("domain_a", d.domain_a), ("domain_b", d.domain_b)):
        if name not in ALIGNED_DIGIT_DOMAINS:
            raise ValueError(
                f"--{flag}={name} has no aligned partner: paired training on the embedded "
                f"digits takes two of {', '.join(ALIGNED_DIGIT_DOMAINS)} (renderings of the "
                "same MNIST digits), or --dataset=folder with A|B side-by-side images."
            )
    if d.domain_a == d.domain_b:
        raise ValueError(f"--domain_a and --domain_b are both {d.domain_a}: pick two domains.")
    source, target = d.domain_a, d.domain_b
    if direction_of(config) == "BtoA":
        source, target = target, source
    a, b = labeled.load(config, source, split), labeled.load(config, target, split)
    if a.num_examples != b.num_examples:
        raise ValueError(
            f"Digit domains {source} ({a.num_examples}) and {target} ({b.num_examples}) have "
            f"different {split} sizes, so they are not aligned: rebuild them in --data_dir."
        )

    def join(ea, eb):
        # The domains are written in the same order; a label mismatch means they are not.
        check = tf.debugging.assert_equal(
            ea["label"], eb["label"], message="paired digit domains are not index-aligned"
        )
        with tf.control_dependencies([check]):
            return {"a": ea["image"], "b": eb["image"], "y_a": ea["label"], "y_b": eb["label"]}

    return tf.data.Dataset.zip((a.dataset, b.dataset)).map(join), a.num_examples


# -- the kind --------------------------------------------------------------------------------------


def _jitter(a, b, seed, image_size, augment, flip):
    pair = tf.concat([labeled.to_float(a), labeled.to_float(b)], axis=-1)
    if augment:
        big = image_size + max(image_size // 8, 2)
        pair = tf.image.resize(pair, (big, big), method="bilinear")
        pair = tf.image.stateless_random_crop(pair, (image_size, image_size, 6), seed=seed)
    if flip:
        pair = tf.image.stateless_random_flip_left_right(pair, seed=seed + 1)
    return pair[..., :3], pair[..., 3:]


def paired_dataset(config, split, *, batch_size, training, seed):
    """Aligned ``{"x_a", "x_b", "y_a", "y_b"}`` batches (the ``paired`` kind)."""
    d = config.data
    if d.dataset == "digits":
        ds, n = digit_pairs(config, split)
    elif d.dataset == "folder":
        ds, n = folder_pairs(config, split)
    else:
        raise ValueError(
            f"Paired training reads --dataset=digits (aligned digit domains) or "
            f"--dataset=folder (A|B side-by-side images), not {d.dataset!r}."
        )
    ds = labeled.shuffled(ds, n, config, seed, training)
    augment, flip = d.augment and training, d.flip and training
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def convert(ex, s):
        x_a, x_b = _jitter(ex["a"], ex["b"], s, d.image_size, augment, flip)
        return {"x_a": x_a, "x_b": x_b, "y_a": ex["y_a"], "y_b": ex["y_b"]}

    ds = tf.data.Dataset.zip((ds, seeds)).map(
        convert, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return labeled.batched(ds, config, batch_size, training)
