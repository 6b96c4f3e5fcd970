"""Milliseconds per CycleGAN training iteration (both players), batch 1, by image size.

    python bench/train_step.py                       # 64, 128, 256 px; with and without XLA
    python bench/train_step.py --sizes=64 --steps=10 --filters=64

Times the compiled step on random images already on the device, so the figure is the
model's cost, not the input pipeline's. The first (tracing / compiling) calls are excluded.

When PyTorch is importable (an optional benchmark dependency: ``pip install torch``; never a
runtime one), the same iteration of the PyTorch reference (pytorch-CycleGAN-and-pix2pix's
ResnetGenerator / NLayerDiscriminator / LSGAN + cycle + identity losses, Adam, batch 1, same
widths and depths) is timed beside it, interleaved with the project's rounds (``--rounds``),
and the ratio project / PyTorch printed (<= 1.00 = at least level).
"""

import importlib.util
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
flags.DEFINE_integer("rounds", 3, "Interleaved rounds of project vs PyTorch (median taken).")
flags.DEFINE_bool("torch", True, "Time the PyTorch reference too when torch is importable.")
FLAGS = flags.FLAGS


def _blocks(size):
    return 9 if size >= 256 else 6


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


def torch_step(size):
    """A callable running one PyTorch reference iteration, or None without torch."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None
    torch.manual_seed(0)
    f = FLAGS.filters

    def norm(c):
        return nn.InstanceNorm2d(c)

    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.body = nn.Sequential(
                nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c), nn.ReLU(True),
                nn.ReflectionPad2d(1), nn.Conv2d(c, c, 3), norm(c),
            )  # fmt: skip

        def forward(self, x):
            return x + self.body(x)

    def generator():
        layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, f, 7), norm(f), nn.ReLU(True)]
        for i in range(2):
            c = f * 2**i
            layers += [nn.Conv2d(c, 2 * c, 3, 2, 1), norm(2 * c), nn.ReLU(True)]
        layers += [Block(4 * f) for _ in range(_blocks(size))]
        for i in range(2):
            c = f * 4 // 2**i
            layers += [nn.ConvTranspose2d(c, c // 2, 3, 2, 1, output_padding=1)]
            layers += [norm(c // 2), nn.ReLU(True)]
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(f, 3, 7), nn.Tanh()]
        return nn.Sequential(*layers)

    def discriminator():
        layers, c = [nn.Conv2d(3, f, 4, 2, 1), nn.LeakyReLU(0.2, True)], f
        for i in range(1, 4):
            out = f * min(2**i, 8)
            layers += [nn.Conv2d(c, out, 4, 2 if i < 3 else 1, 1), norm(out)]
            layers += [nn.LeakyReLU(0.2, True)]
            c = out
        return nn.Sequential(*layers, nn.Conv2d(c, 1, 4, 1, 1))

    g_ab, g_ba, d_a, d_b = generator(), generator(), discriminator(), discriminator()
    opt_g = torch.optim.Adam([*g_ab.parameters(), *g_ba.parameters()], 2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam([*d_a.parameters(), *d_b.parameters()], 2e-4, betas=(0.5, 0.999))
    mse, l1 = nn.MSELoss(), nn.L1Loss()
    shape = (FLAGS.batch_size, 3, size, size)
    x_a, x_b = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1

    def gan(d, x, real):
        y = d(x)
        return mse(y, torch.full_like(y, 1.0 if real else 0.0))

    def step():
        for p in [*d_a.parameters(), *d_b.parameters()]:
            p.requires_grad_(False)
        opt_g.zero_grad()
        fake_b, fake_a = g_ab(x_a), g_ba(x_b)
        loss = (
            gan(d_b, fake_b, True)
            + gan(d_a, fake_a, True)
            + 10.0 * (l1(g_ba(fake_b), x_a) + l1(g_ab(fake_a), x_b))
            + 5.0 * (l1(g_ab(x_b), x_b) + l1(g_ba(x_a), x_a))
        )
        loss.backward()
        opt_g.step()
        for p in [*d_a.parameters(), *d_b.parameters()]:
            p.requires_grad_(True)
        opt_d.zero_grad()
        d_loss = 0.5 * (gan(d_b, x_b, True) + gan(d_b, fake_b.detach(), False))
        d_loss = d_loss + 0.5 * (gan(d_a, x_a, True) + gan(d_a, fake_a.detach(), False))
        d_loss.backward()
        opt_d.step()
        return float(loss.detach())

    return step


def time_torch(step):
    for _ in range(FLAGS.warmup):
        step()
    times = []
    for _ in range(FLAGS.steps):
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main(_):
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"CycleGAN train step, batch {FLAGS.batch_size}, filters {FLAGS.filters}, on {device}")
    with_torch = FLAGS.torch and importlib.util.find_spec("torch") is not None
    if FLAGS.torch and not with_torch:
        print("(PyTorch not importable: `pip install torch` to time the reference beside it)")
    columns = [f"{'xla=' + j:>12}" for j in FLAGS.jit]
    if with_torch:
        columns.append(f"{'pytorch':>12}")
    print(f"{'size':>6} {'G params':>10} " + " ".join(columns) + "  speed-up  vs pytorch")
    for size in (int(s) for s in FLAGS.sizes):
        results = {j: [] for j in FLAGS.jit}
        reference = []
        step = torch_step(size) if with_torch else None
        # Interleaved rounds, so a change in the machine's load hits both sides alike.
        for _ in range(FLAGS.rounds if with_torch else 1):
            for j in FLAGS.jit:
                ms, params = time_step(size, j == "true")
                results[j].append(ms)
            if step is not None:
                reference.append(time_torch(step))
        medians = {j: statistics.median(v) for j, v in results.items()}
        cells = [f"{medians[j]:>9.1f} ms" for j in FLAGS.jit]
        ratio = ""
        if "false" in medians and "true" in medians:
            ratio = f"  x{medians['false'] / medians['true']:.2f}"
        versus = ""
        if reference:
            torch_ms = statistics.median(reference)
            cells.append(f"{torch_ms:>9.1f} ms")
            best = min(medians.values())
            versus = f"  {best / torch_ms:.2f}x (best project / pytorch)"
        print(f"{size:>6} {params:>10,} {' '.join(cells)}{ratio}{versus}", flush=True)


if __name__ == "__main__":
    app.run(main)
