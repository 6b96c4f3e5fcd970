"""Where LiteRT's time goes against ONNX Runtime's, part by part of a CycleGAN generator.

    python bench/op_profile.py                      # 128 and 256 px, 2 threads
    python bench/op_profile.py --sizes=128 --threads=1

The generator of ``bench/export_latency.py`` is cut into the parts it is made of (the stem's
padded 7x7 convolution, each stride-2 convolution, a residual block's padded 3x3 convolution,
each transposed convolution, the head, reflection padding alone, and instance norm + ReLU at
each width). Each part is exported on its own, exactly as the export stage writes a path
(TFLite fp32 through ``export.tflite``, ONNX through ``export.onnx``), and timed at one image:

- ``litert``: LiteRT's Interpreter with its default XNNPACK delegate (what the edge runner uses);
- ``ort``: ONNX Runtime at its default optimization level, which on x86 rewrites convolutions
  into its blocked NCHWc layout with kernels of its own;
- ``ort -nchwc``: ONNX Runtime one level lower (``ORT_ENABLE_EXTENDED``), without that layout.

The input is set once and the output left where the runtime wrote it (LiteRT's input tensor,
an ONNX Runtime IO binding), so a part's time is its compute and not copies of its input and
output, which the whole graph does not make between parts. Times are the median of ``--runs``
calls after ``--warmup``, taken twice in alternation; the lower of the two medians is kept (a
virtual machine's neighbours now and then slow one run of calls). ``x n`` is how often the part
occurs in the generator, and the totals weight each part by it; GFLOP/s counts multiply-adds
twice. The last row times the whole generator the same way.

Read the parts for the kernels and the last row for the runtimes: a part exported alone starts
and ends in NHWC, so ONNX Runtime's parts each pay the transposes into and out of its layout,
which its whole graph makes once (its sum of parts is above its whole; LiteRT's is not).
"""

import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402 - bench/benchlib.py, beside this script
import keras  # noqa: E402
import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402

from export import onnx as onnx_lib  # noqa: E402
from export import tflite  # noqa: E402
from export.runtime import cpu_description  # noqa: E402
from trainer.layers import InstanceNormalization, ReflectionPad2D  # noqa: E402
from trainer.networks import resnet_generator  # noqa: E402

flags.DEFINE_list("sizes", ["128", "256"], "Image sizes of the generator.")
flags.DEFINE_integer("filters", 64, "Generator width (64 = reference).")
flags.DEFINE_integer("blocks", -1, "Residual blocks; -1 = 9 at >= 256 px, else 6 (as CycleGAN).")
flags.DEFINE_integer("runs", 20, "Timed single-image calls per runtime and round.")
flags.DEFINE_integer("warmup", 3, "Untimed calls first.")
flags.DEFINE_integer("threads", 2, "CPU threads of LiteRT and ONNX Runtime.")
FLAGS = flags.FLAGS

RUNTIMES = ("litert", "ort", "ort -nchwc")
ROUNDS = 2


def median_ms(fn):
    return benchlib.median_ms(fn, FLAGS.runs, FLAGS.warmup)


def conv_flops(out_hw, cin, cout, k):
    return 2.0 * out_hw * out_hw * cin * cout * k * k


def parts(size, filters, blocks):
    """[(name, input shape, builder, count in the generator, FLOPs)]: the generator's parts."""
    layers = keras.layers
    f1, f2, f4 = filters, 2 * filters, 4 * filters
    s2, s4 = size // 2, size // 4

    def padded_conv(cout, k, pad):
        return lambda x: layers.Conv2D(cout, k)(ReflectionPad2D(pad)(x))

    def norm_relu(x):
        return layers.ReLU()(InstanceNormalization()(x))

    def deconv(cout):
        return lambda x: layers.Conv2DTranspose(cout, 3, strides=2, padding="same")(x)

    def head(x):
        return layers.Activation("tanh")(layers.Conv2D(3, 7)(ReflectionPad2D(3)(x)))

    return [
        (
            "stem: pad 3 + conv 7x7",
            (size, size, 3),
            padded_conv(f1, 7, 3),
            1,
            conv_flops(size, 3, f1, 7),
        ),
        (
            "down: conv 3x3 /2",
            (size, size, f1),
            lambda x: layers.Conv2D(f2, 3, strides=2, padding="same")(x),
            1,
            conv_flops(s2, f1, f2, 3),
        ),
        (
            "down: conv 3x3 /2",
            (s2, s2, f2),
            lambda x: layers.Conv2D(f4, 3, strides=2, padding="same")(x),
            1,
            conv_flops(s4, f2, f4, 3),
        ),
        (
            "block: pad 1 + conv 3x3",
            (s4, s4, f4),
            padded_conv(f4, 3, 1),
            2 * blocks,
            conv_flops(s4, f4, f4, 3),
        ),
        ("  of which pad 1 alone", (s4, s4, f4), ReflectionPad2D(1), 0, 0.0),
        ("up: deconv 3x3 x2", (s4, s4, f4), deconv(f2), 1, conv_flops(s4, f4, f2, 3)),
        ("up: deconv 3x3 x2", (s2, s2, f2), deconv(f1), 1, conv_flops(s2, f2, f1, 3)),
        ("head: pad 3 + conv 7x7 + tanh", (size, size, f1), head, 1, conv_flops(size, f1, 3, 7)),
        ("norm + relu", (size, size, f1), norm_relu, 2, 0.0),
        ("norm + relu", (s2, s2, f2), norm_relu, 2, 0.0),
        ("norm + relu", (s4, s4, f4), norm_relu, 1 + 2 * blocks, 0.0),
    ]


def runners(model, workdir):
    """{runtime: zero-argument call} running ``model``, exported as a path, on one random image
    already in place: the calls time the runtimes' compute, not copies in and out."""
    tflite.write_savedmodel(model, os.path.join(workdir, "sm"), ["image"], ["out"])
    tflite_path = os.path.join(workdir, "m.tflite")
    with open(tflite_path, "wb") as f:
        f.write(tflite.convert(os.path.join(workdir, "sm")))
    onnx_path = os.path.join(workdir, "m.onnx")
    onnx_lib.write(model, onnx_path, ["image"], ["out"])
    shape = (1, *model.inputs[0].shape[1:])
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)

    interpreter = Interpreter(model_path=tflite_path, num_threads=FLAGS.threads)
    interpreter.allocate_tensors()
    tin = interpreter.get_input_details()[0]["index"]
    tout = interpreter.get_output_details()[0]["index"]

    interpreter.set_tensor(tin, x)

    def session(level):
        options = ort.SessionOptions()
        options.intra_op_num_threads = FLAGS.threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = level
        s = ort.InferenceSession(onnx_path, options, providers=["CPUExecutionProvider"])
        binding = s.io_binding()
        binding.bind_ortvalue_input(s.get_inputs()[0].name, ort.OrtValue.ortvalue_from_numpy(x))
        binding.bind_output(s.get_outputs()[0].name)

        return (lambda: s.run_with_iobinding(binding)), lambda: binding.copy_outputs_to_cpu()[0]

    level = ort.GraphOptimizationLevel
    calls = {
        "litert": (interpreter.invoke, lambda: interpreter.get_tensor(tout)),
        "ort": session(level.ORT_ENABLE_ALL),
        "ort -nchwc": session(level.ORT_ENABLE_EXTENDED),
    }
    outputs = {}
    for name, (run, fetch) in calls.items():
        run()
        outputs[name] = fetch()
    for name, out in outputs.items():
        err = float(np.abs(out - outputs["ort"]).max())
        if err > 1e-3:
            raise AssertionError(f"{name} differs from ONNX Runtime by {err:.1e}")
    return {name: run for name, (run, _) in calls.items()}


def time_model(model):
    """{runtime: ms}, the lower of ROUNDS medians taken in alternation."""
    with tempfile.TemporaryDirectory(prefix="op-profile-") as tmp:
        calls = runners(model, tmp)
        best = {}
        for _ in range(ROUNDS):
            for name in RUNTIMES:
                ms = median_ms(calls[name])
                best[name] = min(ms, best.get(name, ms))
        return best


def print_table(rows):
    header = (
        "part",
        "input",
        "x n",
        "GFLOP",
        *(f"{r} ms" for r in RUNTIMES),
        "litert/ort",
        "litert/ort -nchwc",
        "GFLOP/s litert",
        "GFLOP/s ort",
    )
    table = [header]
    for name, shape, count, flops, ms in rows:
        table.append(
            (
                name,
                "x".join(str(d) for d in shape) if shape else "-",
                "-" if count is None else str(count),
                f"{flops / 1e9:.2f}" if flops else "-",
                *(f"{ms[r]:.2f}" for r in RUNTIMES),
                f"{ms['litert'] / ms['ort']:.2f}x",
                f"{ms['litert'] / ms['ort -nchwc']:.2f}x",
                f"{flops / ms['litert'] / 1e6:.0f}" if flops else "-",
                f"{flops / ms['ort'] / 1e6:.0f}" if flops else "-",
            )
        )
    benchlib.print_table(table)
    sys.stdout.flush()


def profile(size):
    blocks = FLAGS.blocks if FLAGS.blocks >= 0 else benchlib.reference_blocks(size)
    print(
        f"\n== CycleGAN generator @ {size}px ({blocks} blocks, {FLAGS.filters} filters): "
        f"1 image, lower of {ROUNDS} medians of {FLAGS.runs}, {FLAGS.threads} threads",
        flush=True,
    )
    rows = []
    totals = dict.fromkeys(RUNTIMES, 0.0)
    total_flops = 0.0
    for name, shape, build, count, flops in parts(size, FLAGS.filters, blocks):
        inputs = keras.Input(shape, name="image")
        ms = time_model(keras.Model(inputs, build(inputs)))
        rows.append((name, shape, count, flops, ms))
        for r in RUNTIMES:
            totals[r] += count * ms[r]
        total_flops += count * flops
    rows.append(("sum of parts (x n)", None, None, total_flops, totals))
    generator = resnet_generator(size, filters=FLAGS.filters, n_blocks=blocks)
    rows.append(("whole generator", (size, size, 3), 1, total_flops, time_model(generator)))
    print_table(rows)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    print(f"LiteRT against ONNX Runtime, part by part ({os.cpu_count()} CPUs)")
    print(f"CPU: {cpu_description()}")
    print(f"onnxruntime {ort.__version__}, keras {keras.__version__}")
    for size in (int(s) for s in FLAGS.sizes):
        profile(size)


if __name__ == "__main__":
    app.run(main)
