"""Image folders in the layouts users already have.

- Unpaired, CycleGAN convention: ``ROOT/trainA/ trainB/ testA/ testB/`` -> domains ``A`` and
  ``B`` (any suffix works: ``trainPhoto/`` is domain ``Photo``).
- Multi-domain: ``ROOT/train/<domain>/`` and ``ROOT/test/<domain>/``.

Any size and mode (grey, RGBA, palette, CMYK, 16-bit) is read with the one preprocessing of
:mod:`trainer.imaging` (the one every runtime uses): RGB, shorter side to ``image_size`` with
antialiased bicubic, centre crop. Files that are not usable images (corrupt, truncated, empty,
or decompression bombs declaring more than ``imaging.MAX_PIXELS``) are named by path and
skipped with a count, or fatal with ``strict_images``.
"""

import concurrent.futures
import os

from absl import logging

from trainer import imaging

EXTENSIONS = imaging.EXTENSIONS
# Raised (strict) or logged (default) for a file that is not a usable image; names the file.
CorruptImageError = imaging.ImageError


def has_domain(root, domain, split):
    """Whether ``root`` holds a ``split`` folder of ``domain`` (see ``domain_dir``)."""
    return any(
        os.path.isdir(c)
        for c in (os.path.join(root, f"{split}{domain}"), os.path.join(root, split, domain))
    )


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
        files.extend(os.path.join(dirpath, n) for n in names if imaging.is_image_file(n))
    return sorted(files)


def load_image(path, image_size):
    """One file -> uint8 [image_size, image_size, 3]; raises CorruptImageError naming the file."""
    return imaging.load(path, image_size)


def check_image(path):
    """None if ``path`` decodes as an image within the pixel limit, else the error naming it."""
    try:
        imaging.open_image(path)
        return None
    except imaging.ImageError as e:
        return e


def scan(folder, image_size=None, strict=False):
    """(paths of readable images in ``folder``, number skipped). Unusable files are named and
    skipped with a count (or, with ``strict``, the first one raises CorruptImageError)."""
    del image_size  # every file is decoded in full whatever the size: one check fits all
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(
            f"No images in {folder} (looked for {', '.join(EXTENSIONS)} files)."
        )
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        errors = list(pool.map(check_image, paths))
    bad = [(p, e) for p, e in zip(paths, errors) if e is not None]
    if bad and strict:
        raise CorruptImageError(
            f"{len(bad)} unusable image file(s) in {folder}, first: {bad[0][1]} "
            "Remove or fix them, or drop --strict_images to skip them."
        )
    for _, error in bad:
        logging.warning("Skipping %s", error)
    if bad:
        summary = (
            f"Skipped {len(bad)} unusable image file(s) of {len(paths)} in {folder} "
            f"(first: {bad[0][1]})."
        )
        logging.warning(summary)
        print(summary, flush=True)
    good = [p for p, e in zip(paths, errors) if e is None]
    if not good:
        raise FileNotFoundError(
            f"Every image in {folder} is unusable ({len(bad)} files, first: {bad[0][1]})."
        )
    return good, len(bad)
