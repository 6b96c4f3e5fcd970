"""Translates an image or a folder of images with an exported model (no TensorFlow).

    python -m export.run --model=runs/cyclegan/export/a2b.onnx --input=img.png --output=out.png
    python -m export.run --model=.../a2b_int8.tflite --input=photos/ --output=translated/
    python -m export.run --model=.../g.onnx --input=face.png --output=o.png --target_domain=blond

Outputs keep the model's size unless --keep_size resizes them back to each input's size. A
path with several outputs writes one file per output (``out_x_a.png``, ``out_x_b.png``).
"""

import argparse
import os
import sys

import numpy as np

from export.runtime import IMAGE_EXTS, Translator


def _save(array, path, size=None):
    from PIL import Image

    image = Image.fromarray(np.asarray(array, np.uint8))
    if size is not None and image.size != size:
        image = image.resize(size, Image.BICUBIC)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    image.save(path)
    return path


def _outputs(result, out_path):
    """[(array, file)] for one translated image (one file per output of multi-output paths)."""
    if isinstance(result, dict):
        stem, ext = os.path.splitext(out_path)
        return [(v, f"{stem}_{k}{ext or '.png'}") for k, v in result.items()]
    return [(result, out_path)]


def translate_files(translator, pairs, target_domain=None, keep_size=False):
    """Translates ``[(input file, output file)]``; returns the files written."""
    from PIL import Image

    written = []
    for src, dst in pairs:
        with Image.open(src) as im:
            size = im.size
        result = translator.translate(src, target_domain=target_domain)
        for array, path in _outputs(result, dst):
            written.append(_save(array, path, size if keep_size else None))
    return written


def plan(input_path, output_path):
    """``[(input file, output file)]`` for a file or a folder."""
    if os.path.isdir(input_path):
        files = sorted(
            f for f in os.listdir(input_path) if os.path.splitext(f)[1].lower() in IMAGE_EXTS
        )
        if not files:
            raise ValueError(f"{input_path} holds no images ({', '.join(IMAGE_EXTS)}).")
        if os.path.splitext(output_path)[1].lower() in IMAGE_EXTS:
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
        "--keep_size", action="store_true", help="Resize outputs back to each input's size."
    )
    args = parser.parse_args(argv)
    try:
        translator = Translator(args.model, threads=args.threads)
        target = args.target_domain
        if target is not None and target.isdigit() and target not in translator.target_domains:
            target = int(target)
        written = translate_files(
            translator, plan(args.input, args.output), target, keep_size=args.keep_size
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
