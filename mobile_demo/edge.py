"""Runs an exported TFLite translation path the way a phone-class device does: LiteRT only.

    python -m mobile_demo.edge --model=DIR/export/a2b_int8.tflite --input=img_or_folder \\
        --output=out_dir [--threads=4] [--benchmark] [--target_domain=NAME]
    python -m mobile_demo.edge --model=DIR/export --path=a2b --input=... # default variant

Needs only ``ai-edge-litert``, ``numpy`` and ``pillow`` (``mobile_demo/requirements-edge.txt``)
plus this package's ``export/runtime.py`` and ``export/metadata.py``; it never imports
TensorFlow or ONNX Runtime. Every TFLite variant the export writes runs (fp32, fp16, dynamic
int8, full int8 with quantized inputs/outputs), and so do two-input paths (``--target_domain``)
and noise-input paths (``--num`` samples, no ``--input``; noise drawn from the path's declared
prior). Pre/post-processing is the project's one preprocessing (``trainer.imaging``: shorter
side to the model's size, antialiased bicubic, centre square) with the value ranges of the
``metadata.json`` beside the model (``export.runtime.Translator``).

``--model`` may be an export directory: the runner then times each variant of ``--path``
within its parity bound on this device and runs the fastest (``export.runtime.fastest_here``:
int8 is several times faster than float on CPUs with int8 dot-product instructions and no
faster on CPUs without them), or the one ``--precision`` names, untimed.
A variant marked ``below bound`` or ``failed`` in metadata.json is refused, naming its figure,
unless ``--allow_below_bound``. In a folder, a file that is not a usable image (empty,
corrupt, a decompression bomb) is reported and skipped; the exit status is non-zero only when
no image was translated (or the model could not be loaded).

``--benchmark`` times the translation of the first image (after warm-up runs) and prints the
median latency, the peak resident memory of the process and the model's file size.
"""

import argparse
import json
import os
import resource
import sys
import time

import numpy as np

from export import runtime as runtime_lib
from export.runtime import Translator
from trainer import imaging


def list_images(path):
    """The image files at ``path``: the file itself, or a folder's images in name order."""
    if os.path.isdir(path):
        files = sorted(
            os.path.join(path, f)
            for f in os.listdir(path)
            if imaging.is_image_file(f) and os.path.isfile(os.path.join(path, f))
        )
        if not files:
            raise FileNotFoundError(
                f"{path} holds no image files ({', '.join(imaging.EXTENSIONS)}); pass an image or a "
                "folder of images as --input."
            )
        return files
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--input {path} does not exist; pass an image or a folder.")
    return [path]


def resolve_model(model_path, path=None, precision=None, threads=None, log=None):
    """``model_path`` itself, or for an export directory the .tflite variant of ``path``:
    ``precision`` when given, else the fastest within its parity bound timed here with
    ``threads`` (one line of figures to ``log``)."""
    if not os.path.isdir(os.fspath(model_path)):
        return os.fspath(model_path)
    return runtime_lib.resolve_model(
        model_path, path, ("tflite",), precision, measure=True, threads=threads, log=log
    )


def load_translator(model_path, threads=None, metadata=None, allow_below_bound=False):
    if not os.fspath(model_path).lower().endswith(".tflite"):
        raise ValueError(
            f"{model_path} is not a .tflite file: the edge runner uses LiteRT only. Pass one "
            "of DIR/export/<path>.tflite, _fp16, _int8 or _int8_full.tflite (run .onnx files "
            "with mobile_demo.service or export.runtime.Translator)."
        )
    try:
        return Translator(
            model_path, metadata=metadata, threads=threads, allow_below_bound=allow_below_bound
        )
    except ValueError as e:
        # The Translator names its keyword; on the command line it is a flag.
        raise ValueError(str(e).replace("allow_below_bound=True", "--allow_below_bound")) from e


def _takes_image(translator):
    kinds = [s.get("kind") for s in translator.metadata.get("inputs", [])]
    if kinds:
        return "image" in kinds
    return getattr(translator, "_image_input", True) is not None


def _save(outputs, out_dir, stem):
    from PIL import Image

    if isinstance(outputs, dict):  # several image outputs (e.g. CoGAN's x_a, x_b)
        written = []
        for name, image in outputs.items():
            written += _save(image, out_dir, f"{stem}_{name}")
        return written
    images = outputs if outputs.ndim == 4 else outputs[None]
    written = []
    for i, image in enumerate(images):
        suffix = f"_{i}" if len(images) > 1 else ""
        path = os.path.join(out_dir, f"{stem}{suffix}.png")
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(path)
        written.append(path)
    return written


def benchmark(call, runs=20, warmup=3):
    """Times ``call()``: {median_ms, p90_ms, min_ms, runs}."""
    for _ in range(warmup):
        call()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        call()
        times.append((time.perf_counter() - t0) * 1000.0)
    times = np.asarray(times)
    return {
        "runs": int(runs),
        "median_ms": float(np.median(times)),
        "p90_ms": float(np.percentile(times, 90)),
        "min_ms": float(times.min()),
    }


def peak_memory_mb():
    """Peak resident memory of this process (Linux reports ru_maxrss in KiB, macOS in bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / (1024.0 * 1024.0) if sys.platform == "darwin" else rss / 1024.0


def run(
    model,
    input=None,  # noqa: A002 - the flag's name
    output="edge_out",
    threads=None,
    target_domain=None,
    num=1,
    seed=0,
    do_benchmark=False,
    runs=20,
    metadata=None,
    log=print,
    allow_below_bound=False,
    path=None,
    warn=None,
    precision=None,
):
    """Translates ``input`` (an image or a folder) into PNGs under ``output``; returns a report.

    ``model``: a .tflite file or an export directory (then ``path`` picks the path, default
    the first, and ``precision`` the variant, default the fastest within its bound timed here). In a folder, unusable files are passed to ``warn(message)`` (default: stderr),
    listed in ``report["skipped"]`` and skipped; ValueError when none was translated.
    """
    warn = warn or (lambda message: print(message, file=sys.stderr))
    model = resolve_model(model, path, precision, threads, log)
    translator = load_translator(
        model, threads=threads, metadata=metadata, allow_below_bound=allow_below_bound
    )
    os.makedirs(output, exist_ok=True)
    if target_domain is not None and target_domain.isdigit():
        target_domain = int(target_domain)
    if translator.target_domains and target_domain is None:
        raise ValueError(
            f"{os.path.basename(model)} is conditional: pass --target_domain= one of "
            f"{', '.join(translator.target_domains)}."
        )
    report = {
        "model": os.path.abspath(model),
        "model_size_mb": os.path.getsize(model) / 1e6,
        "inputs": translator.input_names,
        "image_size": translator.image_size,
        "written": [],
        "skipped": [],
    }
    log(
        f"{os.path.basename(model)}: inputs {', '.join(translator.input_names)}, "
        f"{translator.image_size}x{translator.image_size}, LiteRT"
        + (f", {threads} threads" if threads else "")
    )
    if not _takes_image(translator):  # noise-input path: sample instead of translating
        if input:
            raise ValueError(f"{os.path.basename(model)} takes no image; drop --input.")

        def call():
            return translator.generate(num, seed=seed, target_domain=target_domain)

        report["written"] += _save(call(), output, "sample")
        what = f"{num} sample(s)"
    else:
        if not input:
            raise ValueError("--input is required: an image or a folder of images.")
        files = list_images(input)
        channels = translator.channels
        first = None
        for file in files:
            try:
                image = imaging.open_image(file, channels, max_pixels=translator.max_pixels)
            except imaging.ImageError as e:
                if not os.path.isdir(input):
                    raise
                report["skipped"].append({"file": file, "error": str(e)})
                warn(f"skipped: {e}")
                continue
            first = image if first is None else first
            out = translator.translate(image, target_domain=target_domain, seed=seed)
            stem = os.path.splitext(os.path.basename(file))[0]
            report["written"] += _save(out, output, stem)
        if first is None:
            raise ValueError(
                f"no image in {input} was translated: all {len(files)} files were unusable "
                "(see the messages above)."
            )
        if report["skipped"]:
            warn(
                f"{len(files) - len(report['skipped'])} of {len(files)} images translated; "
                f"{len(report['skipped'])} skipped."
            )

        def call():
            return translator.translate(first, target_domain=target_domain, seed=seed)

        what = "1 image"

    log(f"wrote {len(report['written'])} image(s) to {output}")
    if do_benchmark:
        timing = benchmark(call, runs=runs)
        report.update(timing)
        report["peak_memory_mb"] = peak_memory_mb()
        log(
            f"benchmark: median {timing['median_ms']:.2f} ms, p90 {timing['p90_ms']:.2f} ms "
            f"over {runs} runs ({what}, pre/post-processing included); "
            f"peak memory {report['peak_memory_mb']:.1f} MB; "
            f"model size {report['model_size_mb']:.3f} MB"
        )
    return report


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Run an exported .tflite translation path with LiteRT (no TensorFlow)."
    )
    parser.add_argument(
        "--model",
        required=True,
        help="DIR/export/<path>[_variant].tflite, or DIR/export (the default variant of --path)",
    )
    parser.add_argument("--path", default=None, help="path name when --model is a directory")
    parser.add_argument(
        "--precision",
        default=None,
        choices=("fp32", "fp16", "int8", "int8_full"),
        help="variant when --model is a directory (default: the fastest within its bound, "
        "timed here)",
    )
    parser.add_argument(
        "--allow_below_bound",
        action="store_true",
        help="run a variant marked 'below bound' or 'failed' in metadata.json",
    )
    parser.add_argument("--input", help="an image file or a folder of images")
    parser.add_argument("--output", default="edge_out", help="folder for the translated PNGs")
    parser.add_argument("--threads", type=int, default=None, help="LiteRT CPU threads")
    parser.add_argument("--target_domain", default=None, help="domain name (conditional paths)")
    parser.add_argument("--metadata", default=None, help="metadata.json (default: beside model)")
    parser.add_argument("--num", type=int, default=1, help="samples for noise-input paths")
    parser.add_argument("--seed", type=int, default=0, help="seed of noise inputs")
    parser.add_argument("--benchmark", action="store_true", help="print latency/memory/size")
    parser.add_argument("--runs", type=int, default=20, help="timed runs for --benchmark")
    parser.add_argument("--json", action="store_true", help="print the report as JSON last")
    args = parser.parse_args(argv)
    try:
        report = run(
            args.model,
            args.input,
            args.output,
            threads=args.threads,
            target_domain=args.target_domain,
            num=args.num,
            seed=args.seed,
            do_benchmark=args.benchmark,
            runs=args.runs,
            metadata=args.metadata,
            allow_below_bound=args.allow_below_bound,
            path=args.path,
            precision=args.precision,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
