"""Sample grids: labelled rows of images (x_a, x_ab, x_aba ...) tiled into one uint8 picture.

Each row carries its name in a left margin (Pillow's default bitmap font), so a grid explains
itself: ``x_a`` the source images, ``x_ab`` their translations, ``x_aba`` the translations
back, and whatever rows a method adds (CoGAN's pairs, UNIT's reconstructions ...).
"""

import io
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from trainer import imaging

LABEL_COLOR = (0, 0, 0)


def to_uint8(images):
    """[-1, 1] float images (any array-like) -> uint8 [0, 255]."""
    return imaging.to_uint8(np.asarray(images, dtype=np.float32))


def _default_names(group, count):
    """x_a, x_ab, x_aba for a two-letter direction group ("a2b"); "group 1", ... otherwise."""
    if len(group) == 3 and group[1] == "2" and count <= 3:
        src, dst = group[0], group[2]
        return [f"x_{src}", f"x_{src}{dst}", f"x_{src}{dst}{src}"][:count]
    return [group if count == 1 else f"{group} {i + 1}" for i in range(count)]


def named_rows(groups):
    """``{group: [tensor, ...]}`` or ``{group: [(name, tensor), ...]}`` (a method's
    ``sample_images()``) -> [(row label, numpy batch)] in order."""
    rows = []
    for group, items in groups.items():
        items = list(items)
        defaults = _default_names(group, len(items))
        for i, item in enumerate(items):
            if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
                name, images = item
            else:
                name, images = defaults[i], item
            rows.append((name, np.asarray(images)))
    return rows


def _font():
    return ImageFont.load_default_imagefont()


def _margin(labels, font):
    if not labels:
        return 0
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return max(int(draw.textlength(str(t), font=font)) for t in labels) + 6


def image_grid(rows, max_cols=8, pad=2, labels=None):
    """Tiles ``rows`` (a list of [B, H, W, C] batches in [-1, 1]) into one [H', W', 3] uint8 image.

    Row r of the grid is rows[r][:max_cols]; grey images are repeated to RGB. ``labels`` (one
    string per row) are drawn in a left margin.
    """
    batches = [to_uint8(r)[:max_cols] for r in rows]
    if not batches:
        raise ValueError("image_grid needs at least one row of images.")
    if labels is not None and len(labels) != len(batches):
        raise ValueError(f"image_grid got {len(labels)} labels for {len(batches)} rows.")
    font = _font()
    margin = _margin(labels, font)
    height, width = batches[0].shape[1:3]
    cols = max(b.shape[0] for b in batches)
    grid = np.full(
        (len(batches) * (height + pad) + pad, margin + cols * (width + pad) + pad, 3),
        255,
        np.uint8,
    )
    for r, batch in enumerate(batches):
        if batch.shape[-1] == 1:
            batch = np.repeat(batch, 3, axis=-1)
        for c, img in enumerate(batch):
            y, x = pad + r * (height + pad), margin + pad + c * (width + pad)
            grid[y : y + height, x : x + width] = img[..., :3]
    if labels:
        picture = Image.fromarray(grid)
        draw = ImageDraw.Draw(picture)
        text_height = draw.textbbox((0, 0), "Xg", font=font)[3]
        for r, label in enumerate(labels):
            y = pad + r * (height + pad) + max((height - text_height) // 2, 0)
            draw.text((3, y), str(label), fill=LABEL_COLOR, font=font)
        grid = np.asarray(picture)
    return grid


def labelled_grid(groups, max_cols=8):
    """A method's ``sample_images()`` output -> one labelled uint8 grid."""
    rows = named_rows(groups)
    return image_grid([r for _, r in rows], max_cols=max_cols, labels=[n for n, _ in rows])


def png_bytes(array):
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def save_png(array, path):
    """Writes a uint8 image atomically through tf.io.gfile (local, ``gs://``, ``ram://``)."""
    from trainer import io_utils

    io_utils.atomic_write_bytes(path, png_bytes(array))
    return path


def write_samples(model, batch, model_dir, step, writer=None):
    """The labelled grid of ``model.sample_images(batch)`` -> ``model_dir/samples/step_N.png``
    (and the TensorBoard image ``samples`` when ``writer`` is given); returns the path."""
    grid = labelled_grid(model.sample_images(batch))
    path = save_png(grid, os.path.join(model_dir, "samples", f"step_{int(step):06d}.png"))
    if writer is not None:
        import tensorflow as tf

        with writer.as_default(step=int(step)):
            tf.summary.image("samples", grid[None], max_outputs=1)
    return path
