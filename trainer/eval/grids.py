"""Sample grids: rows of images (x_a, x_ab, x_aba ...) tiled into one uint8 picture."""

import os

import numpy as np
from PIL import Image


def to_uint8(images):
    """[-1, 1] float images (any array-like) -> uint8 [0, 255]."""
    x = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((x + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(rows, max_cols=8, pad=2):
    """Tiles ``rows`` (a list of [B, H, W, C] batches in [-1, 1]) into one [H', W', 3] uint8 image.

    Row r of the grid is rows[r][:max_cols]; grey images are repeated to RGB.
    """
    batches = [to_uint8(r)[:max_cols] for r in rows]
    if not batches:
        raise ValueError("image_grid needs at least one row of images.")
    height, width = batches[0].shape[1:3]
    cols = max(b.shape[0] for b in batches)
    grid = np.full(
        (len(batches) * (height + pad) + pad, cols * (width + pad) + pad, 3), 255, np.uint8
    )
    for r, batch in enumerate(batches):
        if batch.shape[-1] == 1:
            batch = np.repeat(batch, 3, axis=-1)
        for c, img in enumerate(batch):
            y, x = pad + r * (height + pad), pad + c * (width + pad)
            grid[y : y + height, x : x + width] = img[..., :3]
    return grid


def save_png(array, path):
    """Writes a uint8 image atomically (temporary name, then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp-{os.getpid()}"
    Image.fromarray(array).save(tmp, format="PNG")
    os.replace(tmp, path)
    return path
