"""Image folders in the layouts users already have.

- Unpaired, CycleGAN convention: ``ROOT/trainA/ trainB/ testA/ testB/`` -> domains ``A`` and
  ``B`` (any suffix works: ``trainPhoto/`` is domain ``Photo``).
- Multi-domain: ``ROOT/train/<domain>/`` and ``ROOT/test/<domain>/``.

Any size and mode (grey, RGBA, palette, CMYK) is read with Pillow, converted to RGB and resized
(shorter side to ``image_size``, then a centre crop). Corrupt or truncated files are named by
path and skipped with a count in the log, or fatal with ``strict_images``.
"""

import concurrent.futures
import os

import numpy as np
from absl import logging
from PIL import Image, UnidentifiedImageError

EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


class CorruptImageError(ValueError):
    pass


def domain_dir(root, domain, split):
    """The folder holding ``split`` images of ``domain`` under ``root``."""
    if not root:
        raise ValueError("--dataset=folder needs --data_dir=ROOT (with trainA/ trainB/ ...).")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"--data_dir={root} does not exist.")
    for candidate in (os.path.join(root, f"{split}{domain}"), os.path.join(root, split, domain)):
        if os.path.isdir(candidate):
            return candidate
    found = available_domains(root, split)
    hint = (
        f"found domains {', '.join(found)}: pass them as --domain_a/--domain_b"
        if found
        else f"expected {split}A/ {split}B/ or {split}/<domain>/ folders"
    )
    raise FileNotFoundError(
        f"No {split} images of domain {domain!r} under {root} (looked for "
        f"{os.path.join(root, split + domain)} and {os.path.join(root, split, domain)}); {hint}."
    )


def available_domains(root, split):
    names = set()
    if not os.path.isdir(root):
        return []
    for entry in os.listdir(root):
        if entry.startswith(split) and entry != split and os.path.isdir(os.path.join(root, entry)):
            names.add(entry[len(split) :])
    nested = os.path.join(root, split)
    if os.path.isdir(nested):
        names.update(e for e in os.listdir(nested) if os.path.isdir(os.path.join(nested, e)))
    return sorted(names)


def list_images(folder):
    files = []
    for dirpath, _, names in os.walk(folder):
        files.extend(os.path.join(dirpath, n) for n in names if n.lower().endswith(EXTENSIONS))
    return sorted(files)


def load_image(path, image_size):
    """One file -> uint8 [image_size, image_size, 3]; raises CorruptImageError naming the file."""
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                # 16-bit / float grey: stretch the file's own range to 8 bits.
                a = np.asarray(img, dtype=np.float64)
                lo, hi = float(a.min()), float(a.max())
                a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
                img = Image.fromarray(np.round(a).astype(np.uint8), "L")
            if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
                # Transparent pixels over white, as viewers show them.
                rgba = img.convert("RGBA")
                img = Image.new("RGB", rgba.size, (255, 255, 255))
                img.paste(rgba, mask=rgba.getchannel("A"))
            else:
                img = img.convert("RGB")
            w, h = img.size
            scale = image_size / min(w, h)
            nw, nh = max(image_size, round(w * scale)), max(image_size, round(h * scale))
            img = img.resize((nw, nh), Image.BICUBIC)
            left, top = (nw - image_size) // 2, (nh - image_size) // 2
            img = img.crop((left, top, left + image_size, top + image_size))
            return np.asarray(img, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        raise CorruptImageError(f"Cannot read image {path}: {e}") from e


def scan(folder, image_size, strict=False):
    """Paths of readable images in ``folder``; corrupt ones are skipped (or fatal if strict)."""
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(
            f"No images in {folder} (looked for {', '.join(EXTENSIONS)} files)."
        )

    def check(path):
        try:
            load_image(path, 8)
            return path, None
        except CorruptImageError as e:
            return path, e

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(check, paths))
    bad = [(p, e) for p, e in results if e is not None]
    if bad and strict:
        raise CorruptImageError(
            f"{len(bad)} corrupt image file(s) in {folder}, first: {bad[0][1]}. "
            "Remove or fix them, or drop --strict_images to skip them."
        )
    for _, error in bad:
        logging.warning("Skipping %s", error)
    if bad:
        logging.warning("Skipped %d corrupt image(s) of %d in %s.", len(bad), len(paths), folder)
    good = [p for p, e in results if e is None]
    if not good:
        raise FileNotFoundError(f"Every image in {folder} is corrupt ({len(bad)} files).")
    return good, len(bad)
