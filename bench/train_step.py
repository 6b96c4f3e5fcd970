"""Milliseconds per CycleGAN training iteration (both players), batch 1, by image size.

    python bench/train_step.py                       # 64, 128, 256 px; with and without XLA
    python bench/train_step.py --sizes=64 --steps=10 --filters=64

Times the compiled step on random images already on the device, so the figure is the
model's cost, not the input pipeline's. The first (tracing / compiling) calls are excluded.

With ``--trainer`` (the default) the whole trainer is timed too: ``trainer.train_lib.run`` on
the embedded digit domains (mnist -> mnist_m) resized to the same size, batch and settings,
at the trainer's own defaults for everything else (``--steps_per_loop=10``, scalars every
loop, checkpoints and sample grids every 500 steps). Its figure is the wall time between its
first and last TensorBoard scalar write divided by the steps between them: the input
pipeline, the distribution strategy's step, the loop and the summaries are all in it, the
first (tracing) call is not. The ratio trainer / bare step is printed (target: <= 1.05).

When PyTorch is importable (an optional benchmark dependency: ``pip install torch``; never a
runtime one), the same iteration of the PyTorch reference (pytorch-CycleGAN-and-pix2pix's
ResnetGenerator / NLayerDiscriminator / LSGAN + cycle + identity losses, Adam, batch 1, same
widths and depths) is timed beside it, interleaved with the project's rounds (``--rounds``),
and the ratio project / PyTorch printed (<= 1.00 = at least level).
"""

import glob
import importlib.util
import os
import statistics
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchlib  # noqa: E402 - bench/benchlib.py, beside this script
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
flags.DEFINE_bool("trainer", True, "Time the whole trainer (train_lib.run) beside the step.")
flags.DEFINE_integer("steps_per_loop", 10, "The trainer's --steps_per_loop (its default: 10).")
flags.DEFINE_string("data_dir", None, "TFDS data_dir of the embedded digits (default: TFDS').")
FLAGS = flags.FLAGS


def make_config(size, jit, **train):
    specs = get("cyclegan").hparam_specs()
    hparams = {k: s.default for k, s in specs.items()}
    hparams["filters"] = FLAGS.filters
    return Config(
        method="cyclegan",
        data=DataConfig(image_size=size, batch_size=FLAGS.batch_size, data_dir=FLAGS.data_dir),
        train=TrainConfig(**{"train_steps": 1000, "jit_compile": jit, **train}),
        eval=EvalConfig(),
        hparams=HParams(hparams),
    )


def time_step(size, jit):
    model = build(make_config(size, jit))
    model.make_optimizers(1000)
    shape = (FLAGS.batch_size, size, size, 3)
    batch = {"x_a": tf.random.uniform(shape, -1, 1), "x_b": tf.random.uniform(shape, -1, 1)}
    step = tf.function(model.train_step, jit_compile=jit)
    # float() waits for the step to finish.
    ms = benchlib.median_ms(lambda: float(step(batch)["gen_loss"]), FLAGS.steps, FLAGS.warmup)
    return ms, model.gen_ab.count_params()


def time_trainer(size, jit):
    """Milliseconds per step of the whole trainer (see the module docstring)."""
    from trainer import train_lib

    loop = FLAGS.steps_per_loop
    # The first call traces (not timed); then the warm-up loops, then the timed ones.
    warm = max(1, -(-FLAGS.warmup // loop))
    loops = 1 + warm + max(2, -(-FLAGS.steps // loop))
    with tempfile.TemporaryDirectory(prefix="train_step_bench_") as model_dir:
        config = make_config(
            size,
            jit,
            train_steps=loops * loop,
            model_dir=model_dir,
            steps_per_loop=loop,
            log_every=loop,
            export_formats=(),
        )
        train_lib.run(config)
        times = {}  # step -> wall time of its steps_per_sec scalar
        for name in glob.glob(os.path.join(model_dir, "logs", "train", "events.*")):
            for record in tf.data.TFRecordDataset(name):
                event = tf.compat.v1.Event.FromString(record.numpy())
                if any(v.tag == "steps_per_sec" for v in event.summary.value):
                    times[event.step] = event.wall_time
    steps = sorted(times)[warm:]  # times[loop] is the end of the traced call
    return (times[steps[-1]] - times[steps[0]]) * 1000 / (steps[-1] - steps[0])


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
        layers += [Block(4 * f) for _ in range(benchlib.reference_blocks(size))]
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
    return benchlib.median_ms(step, FLAGS.steps, FLAGS.warmup)


def main(_):
    device = "GPU" if tf.config.list_physical_devices("GPU") else "CPU"
    print(f"CycleGAN train step, batch {FLAGS.batch_size}, filters {FLAGS.filters}, on {device}")
    with_torch = FLAGS.torch and importlib.util.find_spec("torch") is not None
    if FLAGS.torch and not with_torch:
        print("(PyTorch not importable: `pip install torch` to time the reference beside it)")
    columns = [f"{'step xla=' + j:>15}" for j in FLAGS.jit]
    if FLAGS.trainer:
        columns += [f"{'trainer xla=' + j:>15}" for j in FLAGS.jit]
    if with_torch:
        columns.append(f"{'pytorch':>12}")
    print(
        f"{'size':>6} {'G params':>10} "
        + " ".join(columns)
        + "  step speed-up"
        + ("  trainer / step" if FLAGS.trainer else "")
        + ("  vs pytorch" if with_torch else "")
    )
    rounds = FLAGS.rounds if (with_torch or FLAGS.trainer) else 1
    for size in (int(s) for s in FLAGS.sizes):
        results = {j: [] for j in FLAGS.jit}
        whole = {j: [] for j in FLAGS.jit}
        reference = []
        step = torch_step(size) if with_torch else None
        # Interleaved rounds, so a change in the machine's load hits every side alike.
        for _ in range(rounds):
            for j in FLAGS.jit:
                ms, params = time_step(size, j == "true")
                results[j].append(ms)
                if FLAGS.trainer:
                    whole[j].append(time_trainer(size, j == "true"))
            if step is not None:
                reference.append(time_torch(step))
        medians = {j: statistics.median(v) for j, v in results.items()}
        cells = [f"{medians[j]:>12.1f} ms" for j in FLAGS.jit]
        ratio = ""
        if "false" in medians and "true" in medians:
            ratio = f"  x{medians['false'] / medians['true']:.2f}"
        if FLAGS.trainer:
            trainer_medians = {j: statistics.median(v) for j, v in whole.items()}
            cells += [f"{trainer_medians[j]:>12.1f} ms" for j in FLAGS.jit]
            ratio += "  " + " ".join(
                f"{trainer_medians[j] / medians[j]:.3f}x (xla={j})" for j in FLAGS.jit
            )
        if reference:
            torch_ms = statistics.median(reference)
            cells.append(f"{torch_ms:>9.1f} ms")
            best = min(medians.values())
            ratio += f"  {best / torch_ms:.2f}x (best step / pytorch)"
        print(f"{size:>6} {params:>10,} {' '.join(cells)}{ratio}", flush=True)


if __name__ == "__main__":
    app.run(main)
