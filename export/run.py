"""Translates an image or a folder of images with an exported model (no TensorFlow).

    python -m export.run --model=runs/cyclegan/export/a2b.onnx --input=img.png --output=out.png
    python -m export.run --model=.../a2b_int8.tflite --input=photos/ --output=translated/
    python -m export.run --model=.../g.onnx --input=face.png --output=o.png --target_domain=blond

Every input goes through the project's one preprocessing (``trainer.imaging``: shorter side to
the model's size with antialiased bicubic filtering, centre square), so outputs have the
model's size; --keep_size resizes each back to the size of the centre square it came from. A
path with several outputs writes one file per output (``out_x_a.png``, ``out_x_b.png``).

In a folder run a file that is not a usable image (empty, corrupt, a decompression bomb) is
reported on stderr and skipped; the others are translated. The exit status is 0 when at least
one image was translated, 1 when none was (or the model could not be loaded).
"""

import argparse
import os
import sys

import numpy as np

from export.runtime import Translator
from trainer import imaging


def _save(array, path, size=None):
    from PIL import Image

    array = np.asarray(array, np.uint8)
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array)
    if size is not None and image.size != size:
        image = image.resize(size, Image.BICUBIC)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        image.save(path)
    except OSError as e:
        raise ValueError(
            f"Cannot write {path}: {e.strerror or e}. Choose an --output you can write to."
        ) from None
    return path


def _outputs(result, out_path):
    """[(array, file)] for one translated image (one file per output of multi-output paths)."""
    if isinstance(result, dict):
        stem, ext = os.path.splitext(out_path)
        return [(v, f"{stem}_{k}{ext or '.png'}") for k, v in result.items()]
    return [(result, out_path)]


def translate_files(translator, pairs, target_domain=None, keep_size=False, on_error=None):
    """Translates ``[(input file, output file)]``; returns the files written.

    A file that is not a usable image raises ``imaging.ImageError``, or, with ``on_error``,
    is passed to ``on_error(file, error)`` and skipped.
    """
    channels = translator.channels
    written = []
    for src, dst in pairs:
        try:
            # Decoded once: the bomb guard and the colour conversion of every runtime.
            picture = imaging.open_image(
                src, channels=channels or 3, max_pixels=translator.max_pixels
            )
            result = translator.translate(picture, target_domain=target_domain)
        except imaging.ImageError as e:
            if on_error is None:
                raise
            on_error(src, e)
            continue
        side = min(picture.size)
        for array, path in _outputs(result, dst):
            written.append(_save(array, path, (side, side) if keep_size else None))
    return written


def plan(input_path, output_path):
    """``[(input file, output file)]`` for a file or a folder."""
    if os.path.isdir(input_path):
        files = sorted(
            f
            for f in os.listdir(input_path)
            if imaging.is_image_file(f) and os.path.isfile(os.path.join(input_path, f))
        )
        if not files:
            raise ValueError(f"{input_path} holds no images ({', '.join(imaging.EXTENSIONS)}).")
        if imaging.is_image_file(output_path):
            raise ValueError(
                f"--input={input_path} is a folder, so --output must be a folder, not "
                f"{output_path}."
            )
        return [(os.path.join(input_path, f), os.path.join(output_path, f)) for f in files]
    if not os.path.exists(input_path):
        raise FileNotFoundError(f"--input={input_path} does not exist.")
    if os.path.isdir(output_path) or not os.path.splitext(output_path)[1]:
        output_path = os.path.join(output_path, os.path.basename(input_path))
    return [(input_path, output_path)]


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m export.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--model", required=True, help="An exported .onnx or .tflite file.")
    parser.add_argument("--input", required=True, help="An image file or a folder of images.")
    parser.add_argument("--output", required=True, help="An output file, or a folder.")
    parser.add_argument("--target_domain", default=None, help="For paths with a domain input.")
    parser.add_argument("--threads", type=int, default=None, help="Runtime CPU threads.")
    parser.add_argument(
        "--keep_size",
        action="store_true",
        help="Resize each output to the size of the input's centre square.",
    )
    parser.add_argument(
        "--allow_below_bound",
        action="store_true",
        help="Run an artifact marked 'below bound' or 'failed' in metadata.json.",
    )
    args = parser.parse_args(argv)
    skipped = []

    def report(path, error):
        skipped.append(path)
        print(f"skipped: {error}", file=sys.stderr)

    try:
        translator = Translator(
            args.model, threads=args.threads, allow_below_bound=args.allow_below_bound
        )
        target = args.target_domain
        if target is not None and target.isdigit() and target not in translator.target_domains:
            target = int(target)
        pairs = plan(args.input, args.output)
        # A single file's error is the run's error; in a folder it is reported and skipped.
        written = translate_files(
            translator,
            pairs,
            target,
            keep_size=args.keep_size,
            on_error=report if os.path.isdir(args.input) else None,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    if skipped:
        print(
            f"{len(pairs) - len(skipped)} of {len(pairs)} images translated; "
            f"{len(skipped)} skipped (see above).",
            file=sys.stderr,
        )
    if not written:
        print("error: no image was translated.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
