"""Milliseconds per CycleGAN training iteration (both players), batch 1, by image size.

    python bench/train_step.py                       # 64, 128, 256 px; with and without XLA
    python bench/train_step.py --sizes=64 --steps=10 --filters=64

Times the compiled step on random images already on the device, so the figure is the
model's cost, not the input pipeline's. The first (tracing / compiling) calls are excluded.
"""

import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

from trainer.config import Config, DataConfig, EvalConfig, HParams, TrainConfig  # noqa: E402
from trainer.methods import build, get  # noqa: E402

flags.DEFINE_list("sizes", ["64", "128", "256"], "Image sizes.")
flags.DEFINE_integer("steps", 10, "Timed iterations per setting (after warm-up).")
flags.DEFINE_integer("warmup", 2, "Untimed iterations per setting.")
flags.DEFINE_integer("filters", 64, "Generator/discriminator width (64 = the reference).")
flags.DEFINE_integer("batch_size", 1, "Batch size.")
flags.DEFINE_list("jit", ["false", "true"], "XLA settings to time.")
FLAGS = flags.FLAGS


def time_step(size, jit):
    specs = get("cyclegan").hparam_specs()
    hparams = {k: s.default for k, s in specs.items()}
    hparams["filters"] = FLAGS.filters
    config = Config(
        method="cyclegan",
        data=DataConfig(image_size=size, batch_size=FLAGS.batch_size),
        train=TrainConfig(train_steps=1000, jit_compile=jit),
        eval=EvalConfig(),
        hparams=HParams(hparams),
    )
    model = build(config)
    model.make_optimizers(1000)
    shape = (FLAGS.batch_size, size, size, 3)
    batch = {"x_a": tf.random.uniform(shape, -1, 1), "x_b": tf.random.uniform(shape, -1, 1)}
    step = tf.function(model.train_step, jit_compile=jit)
    for _ in range(FLAGS.warmup):
        float(step(batch)["gen_loss"])
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        float(step(batch)["gen_loss"])  # float() waits for the step to finish
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), model.gen_ab.count_params()


def main(_):
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"CycleGAN train step, batch {FLAGS.batch_size}, filters {FLAGS.filters}, on {device}")
    print(
        f"{'size':>6} {'G params':>10} "
        + " ".join(f"{'xla=' + j:>12}" for j in FLAGS.jit)
        + "  speed-up"
    )
    for size in (int(s) for s in FLAGS.sizes):
        results = {}
        for j in FLAGS.jit:
            ms, params = time_step(size, j == "true")
            results[j] = ms
        cells = " ".join(f"{results[j]:>9.1f} ms" for j in FLAGS.jit)
        ratio = ""
        if "false" in results and "true" in results:
            ratio = f"  x{results['false'] / results['true']:.2f}"
        print(f"{size:>6} {params:>10,} {cells}{ratio}", flush=True)


if __name__ == "__main__":
    app.run(main)
