"""A run's training curve: every kept checkpoint scored by the evaluation, drawn as a PNG.

    python bench/curve.py --model_dir=bench/runs/unit --output=bench/charts/unit.png

Each checkpoint step before the last is evaluated as ``python -m trainer.evaluate --step=N``
would (the run's judges, test images and ``--eval_examples``), with its report under
``MODEL_DIR/curve/step_NNNNNN/`` so the run's own ``metrics.json`` stays the final one; the last
point is that final report. A step already scored there is not scored again, so a stopped
curve resumes. The chart plots the table's fractions against the step: transfer accuracy
(solid) and domain score (dashed) per direction, a generator's class accuracy or a joint
sample's correspondence, G(x, c)'s class preservation (solid) and domain accuracy (dashed)
averaged over its targets, UDA accuracy; a method with none of them (an unconditional GAN)
gets its digit FID. The points go to OUTPUT with ``.json`` for ``.png``. ``bench/results.py``
runs this after each row, with every checkpoint kept.
"""

import json
import os
import sys
import time

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A finished run of `python -m trainer.main`.")
flags.DEFINE_string("output", None, "The chart's PNG path (its points go beside it as .json).")
flags.DEFINE_string("title", None, "The chart's title (default: the model_dir's name).")
flags.DEFINE_integer(
    "eval_examples", None, "Test images per domain (default: the run's own --eval_examples)."
)


def series(metrics):
    """{label: value} of one report's figures in [0, 1] (the table's headline figures)."""
    out = {}
    for role, e in sorted((metrics.get("directions") or {}).items()):
        if e.get("transfer_accuracy") is not None:
            out[f"{role} transfer accuracy"] = e["transfer_accuracy"]
        if e.get("domain_score") is not None:
            out[f"{role} domain score"] = e["domain_score"]
    for name, e in sorted((metrics.get("generated") or {}).items()):
        if e.get("correspondence") is not None:
            out[f"{name} correspondence"] = e["correspondence"]
        if e.get("class_accuracy") is not None:
            out[f"{name} class accuracy"] = e["class_accuracy"]
    for name, e in sorted((metrics.get("conditional") or {}).items()):
        avg = e.get("average") or {}
        if avg.get("domain_accuracy") is not None:
            out[f"{name} domain accuracy"] = avg["domain_accuracy"]
        if avg.get("class_preservation") is not None:
            out[f"{name} class preservation"] = avg["class_preservation"]
    if (metrics.get("uda") or {}).get("accuracy") is not None:
        out["UDA accuracy"] = metrics["uda"]["accuracy"]
    return out


def fid_series(metrics):
    """{label: digit FID} of the directions and generated samples (for a chart without
    fractions)."""
    out = {}
    for group in ("directions", "generated"):
        for name, e in sorted((metrics.get(group) or {}).items()):
            if e.get("fid") is not None:
                out[f"{name} digit FID"] = e["fid"]
    return out


def _load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def reports(model_dir, eval_examples=None):
    """[(step, metrics)] ascending: each kept checkpoint before the final report scored (or
    read back from an earlier call), then the run's own ``metrics.json``."""
    final = _load(os.path.join(model_dir, "metrics.json"))
    steps = []
    if os.path.isdir(os.path.join(model_dir, "checkpoints")):
        from trainer import checkpoints

        steps = [s for s in checkpoints.checkpoint_steps(model_dir) if s < final["step"]]
    out = []
    for i, step in enumerate(steps):
        out_dir = os.path.join(model_dir, "curve", f"step_{step:06d}")
        path = os.path.join(out_dir, "metrics.json")
        if os.path.exists(path):
            out.append((step, _load(path)))
            continue
        from trainer.eval.evaluate import evaluate_model_dir

        start = time.perf_counter()
        metrics = evaluate_model_dir(
            model_dir, step=step, eval_examples=eval_examples, output_dir=out_dir
        )
        took = time.perf_counter() - start
        print(f"curve: step {step} scored ({i + 1}/{len(steps)}, {took:.0f} s)", flush=True)
        out.append((step, metrics))
    return out + [(final["step"], final)]


def points(scored):
    """{"steps": [...], "kind": "fraction"|"fid", "series": {label: [value or None ...]}}."""
    fractions = [series(m) for _, m in scored]
    kind = "fraction" if any(fractions) else "fid"
    picked = fractions if kind == "fraction" else [fid_series(m) for _, m in scored]
    labels = list(dict.fromkeys(k for p in picked for k in p))  # first-seen order
    return {
        "steps": [s for s, _ in scored],
        "kind": kind,
        "series": {k: [p.get(k) for p in picked] for k in labels},
    }


def draw(data, path, title):
    """Writes the chart of ``points()`` to ``path`` (PNG, written whole or not at all)."""
    import io

    import matplotlib

    from trainer.io_utils import atomic_write_bytes

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=100)
    colours = {}
    for label, values in data["series"].items():
        subject = label.rsplit(" ", 2)[0] if data["kind"] == "fraction" else label
        colour = colours.setdefault(subject, f"C{len(colours) % 10}")
        dashed = label.endswith(("domain score", "domain accuracy"))
        xy = [(s, v) for s, v in zip(data["steps"], values) if v is not None]
        ax.plot(
            [s for s, _ in xy],
            [v for _, v in xy],
            linestyle="--" if dashed else "-",
            marker="o",
            markersize=3,
            color=colour,
            label=label,
        )
    if data["kind"] == "fraction":
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("fraction of test images")
    else:
        ax.set_ylabel("digit FID (lower is better)")
    ax.set_xlabel("training step")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right" if data["kind"] == "fraction" else "upper right")
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png")
    plt.close(fig)
    atomic_write_bytes(path, png.getvalue())


def main(argv):
    del argv
    if not FLAGS.model_dir or not FLAGS.output:
        raise app.UsageError("--model_dir and --output are required.")
    if not os.path.exists(os.path.join(FLAGS.model_dir, "metrics.json")):
        print(
            f"error: {FLAGS.model_dir} has no metrics.json: train (and evaluate) it first with "
            f"`python -m trainer.main --model_dir={FLAGS.model_dir} ...`.",
            file=sys.stderr,
        )
        sys.exit(1)
    from trainer import console

    # Library chatter (TensorFlow's, TFDS's) goes to the run's log, as trainer.evaluate does.
    console.quiet_libraries(log_path=os.path.join(FLAGS.model_dir, console.RUN_LOG))
    data = points(reports(FLAGS.model_dir, FLAGS.eval_examples))
    title = FLAGS.title or os.path.basename(os.path.normpath(FLAGS.model_dir))
    draw(data, FLAGS.output, title)
    from trainer.io_utils import atomic_write_json

    atomic_write_json(os.path.splitext(FLAGS.output)[0] + ".json", data)
    print(f"Wrote {FLAGS.output} ({len(data['steps'])} steps).", flush=True)


def run_main():
    from trainer import console

    # Before TensorFlow is imported: its native log lines go to the run log, not the console.
    console.quiet_libraries(verbosity=console.verbosity_from_argv(sys.argv))
    app.run(main)


if __name__ == "__main__":
    run_main()
