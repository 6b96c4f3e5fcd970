"""The one image preprocessing of the project: decode, convert, resize, crop, scale.

Training (image folders), evaluation, export checks and every runtime (``export.runtime``,
``export.run``, the edge runner, the service; ``mobile_demo/web/app.js`` mirrors it in
JavaScript) see a picture the same way:

1. decode with Pillow, refusing files that declare more than ``MAX_PIXELS`` pixels
   (decompression bombs) before any pixel is decoded;
2. convert to RGB (or L for one-channel models): 16-bit and float grey stretched to 8 bits,
   transparent pixels composited over white, palettes expanded;
3. resize the shorter side to the model's size with antialiased bicubic filtering (Pillow's
   ``BICUBIC`` is a convolution whose support widens with the downscale factor), then crop the
   centre square;
4. scale uint8 0..255 to the model's value range (``[-1, 1]``: ``x / 127.5 - 1``) and back.

``PREPROCESSING`` describes steps 2-4 and is stored in every artifact's metadata, so an app
written elsewhere can do the same. Plain numpy and Pillow: no TensorFlow import.
"""

import io
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

# File names the folder readers and runners treat as images.
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")
# Largest picture decoded anywhere (width x height): a 69-byte PNG can declare 30000 x 30000.
MAX_PIXELS = 64_000_000
VALUE_RANGE = (-1.0, 1.0)

PREPROCESSING = {
    "color": "RGB (grey stretched to 8 bits, alpha over white)",
    "resize": "shorter side to image_size",
    "crop": "centre square",
    "filter": "bicubic, antialiased (Pillow BICUBIC)",
    "scale": "uint8 0..255 -> value_range, linear",
}


class ImageError(ValueError):
    """A file or buffer that is not a usable image; the message names it and why."""


def is_image_file(path):
    return str(path).lower().endswith(EXTENSIONS)


def to_float(images, value_range=VALUE_RANGE):
    """uint8 0..255 -> float32 in ``value_range`` (``[-1, 1]``: ``x / 127.5 - 1``)."""
    lo, hi = value_range
    return np.asarray(images, np.float32) * np.float32((hi - lo) / 255.0) + np.float32(lo)


def to_uint8(images, value_range=VALUE_RANGE):
    """float in ``value_range`` -> uint8 0..255, rounded and clipped."""
    lo, hi = value_range
    x = (np.asarray(images, np.float32) - lo) * (255.0 / (hi - lo))
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _normalize_mode(img, channels):
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        # 16-bit / float grey: stretch the file's own range to 8 bits.
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min()), float(a.max())
        a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        img = Image.fromarray(np.round(a).astype(np.uint8), "L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        # Transparent pixels over white, as viewers show them.
        rgba = img.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        img = flat
    return img.convert("L" if channels == 1 else "RGB")


def open_image(source, channels=3, max_pixels=MAX_PIXELS, name=None):
    """A path, bytes or file object -> PIL image in RGB (or L), fully decoded.

    Raises ImageError naming the file for anything that is not a readable image, including
    pictures over ``max_pixels`` (checked from the header, before decoding).
    """
    name = name or (os.fspath(source) if isinstance(source, (str, os.PathLike)) else "image")
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageError(f"{name} is empty (0 bytes): send or pick an image file.")
        source = io.BytesIO(bytes(source))
    elif isinstance(source, (str, os.PathLike)):
        if os.path.isdir(source):
            raise ImageError(f"{name} is a directory, not an image file.")
        if os.path.exists(source) and os.path.getsize(source) == 0:
            raise ImageError(f"{name} is empty (0 bytes): it is not an image.")
    try:
        with Image.open(source) as img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(
                    f"{name} declares {w}x{h} = {w * h / 1e6:.0f} Mpx, over the "
                    f"{max_pixels / 1e6:.0f} Mpx limit (a decompression bomb or a huge "
                    "picture): resize it first."
                )
            img.load()
            return _normalize_mode(img, channels)
    except ImageError:
        raise
    except FileNotFoundError as e:
        raise ImageError(f"{name} does not exist.") from e
    except (
        OSError,
        UnidentifiedImageError,
        ValueError,
        SyntaxError,
        Image.DecompressionBombError,
    ) as e:
        raise ImageError(f"Cannot read image {name}: {e}") from e


def fit(img, size):
    """PIL image -> uint8 [size, size, C]: shorter side to ``size`` (antialiased bicubic),
    then the centre square. ``size`` may be an int or (height, width)."""
    th, tw = (size, size) if np.isscalar(size) else (int(size[0]), int(size[1]))
    if isinstance(img, np.ndarray):
        arr = img[..., 0] if img.ndim == 3 and img.shape[-1] == 1 else img
        img = Image.fromarray(np.asarray(arr, np.uint8))
    w, h = img.size
    if (w, h) != (tw, th):
        scale = max(tw / w, th / h)
        nw, nh = max(tw, round(w * scale)), max(th, round(h * scale))
        if (nw, nh) != (w, h):
            img = img.resize((nw, nh), Image.BICUBIC)
        left, top = (nw - tw) // 2, (nh - th) // 2
        img = img.crop((left, top, left + tw, top + th))
    out = np.asarray(img, dtype=np.uint8)
    return out[..., None] if out.ndim == 2 else out


def load(source, size, channels=3, max_pixels=MAX_PIXELS, name=None):
    """Decode + fit: uint8 [size, size, channels] (see the module docstring)."""
    return fit(open_image(source, channels=channels, max_pixels=max_pixels, name=name), size)
