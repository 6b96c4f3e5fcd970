"""Size on disk and latency of every exported artifact of a CycleGAN generator.

    python bench/export_latency.py                         # untrained reference generator, 128 and 256 px
    python bench/export_latency.py --model_dir=runs/cyclegan --path=a2b   # a trained one, at its size
    python bench/export_latency.py --sizes=128 --runs=20 --threads=2

For each artifact (TFLite fp32 / fp16 / int8 / int8_full under LiteRT, ONNX fp32 and static
int8 under ONNX Runtime) and for the Keras model itself (eager call and ``tf.function``), the
median of ``--runs`` single-image calls after ``--warmup`` untimed ones, in milliseconds, with
the ratio to ONNX Runtime fp32, to LiteRT fp32 and to ``tf.function`` (< 1 = faster). Exported
runtimes run with ``--threads`` CPU threads; Keras uses TensorFlow's default thread pools.
The XNNPACK column says how LiteRT runs each .tflite: the delegate's partition count and the
ops left to builtin kernels ("1" alone = the whole graph in one XNNPACK partition). Parity is
on the path's test images with ``--model_dir`` (PSNR / max error vs Keras), else on random
inputs.
"""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402 - bench/benchlib.py, beside this script
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import app, flags, logging  # noqa: E402

from export import api, tflite  # noqa: E402
from export import metadata as metadata_lib  # noqa: E402
from export.runtime import Translator, cpu_description  # noqa: E402

flags.DEFINE_list("sizes", ["128", "256"], "Image sizes of the untrained generator.")
flags.DEFINE_string("model_dir", None, "Benchmark this trained model instead (at its size).")
flags.DEFINE_string("path", "a2b", "Translation path of --model_dir to benchmark.")
flags.DEFINE_integer("filters", 64, "Generator width of the untrained generator (64 = reference).")
flags.DEFINE_integer("blocks", -1, "Residual blocks; -1 = 9 at >= 256 px, else 6 (as CycleGAN).")
flags.DEFINE_integer("runs", 20, "Timed single-image calls per runtime.")
flags.DEFINE_integer("warmup", 3, "Untimed calls first.")
flags.DEFINE_integer("threads", 2, "CPU threads of LiteRT and ONNX Runtime.")
flags.DEFINE_string("export_dir", None, "Keep the artifacts here (default: a temporary dir).")
FLAGS = flags.FLAGS


def median_ms(fn):
    return benchlib.median_ms(fn, FLAGS.runs, FLAGS.warmup)


def models():
    """[(label, name, keras model, run fields, (test, calibration) uint8 images or None)]."""
    if FLAGS.model_dir:
        from trainer.checkpoints import load_trained

        trained = load_trained(FLAGS.model_dir)
        paths = trained.model.translation_paths()
        if FLAGS.path not in paths:
            raise ValueError(f"--path={FLAGS.path}: the model has {', '.join(paths)}.")
        d = trained.config.data
        run = metadata_lib.run_fields(
            trained.config.method, trained.step, trained.checkpoint, d.image_size, []
        )
        label = f"{trained.config.method} {FLAGS.path} @ {d.image_size}px (step {trained.step})"
        path = paths[FLAGS.path]
        source = path.source_domain
        images = (
            api.load_images(trained.config, source, "test", api.TEST_EXAMPLES),
            api.load_images(trained.config, source, "train", api.CALIBRATION_EXAMPLES),
        )
        return [(label, FLAGS.path, path.model, run, images)]
    from trainer.networks import resnet_generator

    out = []
    for size in (int(s) for s in FLAGS.sizes):
        blocks = FLAGS.blocks if FLAGS.blocks >= 0 else benchlib.reference_blocks(size)
        model = resnet_generator(size, filters=FLAGS.filters, n_blocks=blocks, name="gen_ab")
        run = metadata_lib.run_fields("cyclegan", 0, None, size, [])
        label = (
            f"untrained CycleGAN generator @ {size}px ({blocks} blocks, "
            f"{model.count_params():,} params)"
        )
        out.append((label, "a2b", model, run, None))
    return out


def _parity(artifact):
    parity = artifact.get("parity") or {}
    figures = parity.get("test_images") or parity.get("random")
    if not figures:
        return artifact.get("status", "")
    where = "test" if "test_images" in parity else "random"
    return f"PSNR {figures['psnr']:.1f} dB, max|err| {figures['max_abs']:.1e} ({where})"


def _xnnpack(path):
    partitions, builtin = tflite.delegate_partitions(path, threads=FLAGS.threads)
    left = ", ".join(f"{op} x{n}" for op, n in sorted(builtin.items(), key=lambda kv: -kv[1]))
    return f"{partitions}" + (f" + builtin {left}" if left else "")


def bench(label, name, model, run, images, export_dir):
    size = model.inputs[0].shape[1]
    print(f"\n== {label}: exporting ...", flush=True)
    result = api.export_paths(
        {name: model},
        export_dir,
        formats=("tflite", "onnx", "onnx_int8", "keras"),
        run=run,
        images={name: images} if images else None,
        allow_parity_failure=True,
        print_table=False,
    )
    x = np.random.default_rng(0).uniform(-1, 1, (1, size, size, 3)).astype(np.float32)
    xt = tf.constant(x)
    rows = []
    eager = median_ms(lambda: model(xt, training=False).numpy())
    compiled = tf.function(lambda t: model(t, training=False))
    graph = median_ms(lambda: compiled(xt).numpy())
    keras_file = next(a for a in result["artifacts"] if a["format"] == "keras")
    rows.append(("keras (eager)", "keras", keras_file["size_bytes"], eager, "-", ""))
    rows.append(("keras (tf.function)", "tf", keras_file["size_bytes"], graph, "-", ""))
    reference = {}  # (format) -> fp32 median ms
    for artifact in result["artifacts"]:
        if artifact["format"] not in ("tflite", "onnx"):
            continue
        path = os.path.join(export_dir, artifact["file"])
        if artifact["status"] == metadata_lib.NOT_SUPPORTED or not os.path.exists(path):
            reason = artifact.get("reason") or artifact.get("error") or artifact["status"]
            rows.append((artifact["file"], artifact["runtime"], None, None, "-", reason))
            continue
        t = Translator(path, threads=FLAGS.threads, allow_below_bound=True)
        feeds = {t.input_names[0]: x}
        ms = median_ms(lambda t=t, feeds=feeds: t.run(feeds))
        if artifact["precision"] == "fp32":
            reference[artifact["format"]] = ms
        xnn = _xnnpack(path) if artifact["format"] == "tflite" else "-"
        note = f"{_parity(artifact)} {artifact['status']}"
        rows.append((artifact["file"], artifact["runtime"], artifact["size_bytes"], ms, xnn, note))

    def ratio(ms, base):
        return "-" if ms is None or not base else f"{ms / base:.2f}x"

    header = (
        "artifact",
        "runtime",
        "size MB",
        "median ms",
        "vs ORT fp32",
        "vs LiteRT fp32",
        "vs tf.fn",
        "XNNPACK partitions",
        "parity",
    )
    table = [header]
    for file, runtime, nbytes, ms, xnn, note in rows:
        table.append(
            (
                file,
                runtime,
                "-" if nbytes is None else f"{nbytes / 2**20:.2f}",
                "-" if ms is None else f"{ms:.1f}",
                ratio(ms, reference.get("onnx")),
                ratio(ms, reference.get("tflite")),
                ratio(ms, graph),
                xnn,
                note,
            )
        )
    print(f"== {label}: 1 image, median of {FLAGS.runs}, {FLAGS.threads} threads (exported)")
    benchlib.print_table(table)
    sys.stdout.flush()


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"Export latency on {device} ({os.cpu_count()} CPUs), TF {tf.__version__}")
    print(f"CPU: {cpu_description()}")
    for label, name, model, run, images in models():
        if FLAGS.export_dir:
            export_dir = os.path.join(FLAGS.export_dir, f"{name}_{model.inputs[0].shape[1]}")
            bench(label, name, model, run, images, export_dir)
        else:
            # The export directory becomes a link to its versioned set (an export is a
            # transaction), so it lives inside the temporary directory, not as it.
            with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
                bench(label, name, model, run, images, os.path.join(tmp, "export"))


if __name__ == "__main__":
    app.run(main)
