"""Evaluates a trained model_dir: transfer accuracy, domain score, UDA, digit FID/KID, grids.

    python -m trainer.evaluate --model_dir=runs/cyclegan_mnist2mnistm
    python -m trainer.evaluate --model_dir=DIR --step=1000 --eval_examples=500 --data_dir=DATA

Writes DIR/metrics.json, DIR/metrics.md, DIR/eval_samples/ and TensorBoard scalars under
DIR/logs/eval, and prints the table. Classifiers used as judges are trained on first use and
cached in the data_dir (see trainer/eval/classifiers.py).
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A directory written by `python -m trainer.main`.")
flags.DEFINE_integer("step", None, "Checkpoint step to evaluate (default: the latest).")
flags.DEFINE_integer(
    "eval_examples", None, "Test images per domain (default: the value the run was trained with)."
)
flags.DEFINE_string(
    "data_dir", None, "Where the datasets (and cached classifiers) are (default: the run's)."
)
flags.DEFINE_string(
    "inception_weights",
    None,
    "InceptionV3 weights file (no top) for Inception FID/KID (default: the run's); "
    "never downloaded.",
)
flags.DEFINE_list(
    "metrics",
    [],
    "Metric groups to compute: transfer, uda, fid, samples (default: all that apply; "
    "naming transfer or uda on a dataset without labels is an error).",
)


def evaluate_model_dir(
    model_dir, step=None, eval_examples=None, data_dir=None, inception_weights=None, metrics=None
):
    """Restores ``model_dir`` (latest or ``step``) and evaluates it; returns the metrics dict."""
    import tensorflow as tf

    from trainer import train_lib
    from trainer.eval.evaluate import evaluate

    if step is not None and os.path.isdir(model_dir):
        ckpt_dir = os.path.join(model_dir, train_lib.CHECKPOINT_SUBDIR)
        if not os.path.exists(os.path.join(ckpt_dir, f"ckpt-{step}.index")):
            state = tf.train.get_checkpoint_state(ckpt_dir)
            steps = [
                p.rsplit("-", 1)[-1] for p in (state.all_model_checkpoint_paths if state else [])
            ]
            raise FileNotFoundError(
                f"No checkpoint of step {step} in {ckpt_dir}; it has steps "
                f"{', '.join(steps) or 'none'}: pass one of them, or no --step for the latest."
            )
    trained = train_lib.load_trained(model_dir, step)
    config = trained.config
    data = config.data if data_dir is None else dataclasses.replace(config.data, data_dir=data_dir)
    ev = config.eval
    if eval_examples is not None:
        if eval_examples < 2:
            raise ValueError(f"--eval_examples must be >= 2, got {eval_examples}.")
        ev = dataclasses.replace(ev, eval_examples=eval_examples)
    if inception_weights is not None:
        ev = dataclasses.replace(ev, inception_weights=inception_weights)
    train = dataclasses.replace(config.train, model_dir=model_dir)
    config = config.replace(data=data, eval=ev, train=train)
    writer = tf.summary.create_file_writer(os.path.join(model_dir, "logs", "eval"))
    return evaluate(trained.model, config, trained.step, writer=writer, metrics=metrics or None)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required: the directory of a trained run.")
        result = evaluate_model_dir(
            FLAGS.model_dir,
            step=FLAGS.step,
            eval_examples=FLAGS.eval_examples,
            data_dir=FLAGS.data_dir,
            inception_weights=FLAGS.inception_weights,
            metrics=FLAGS.metrics,
        )
    except (ValueError, FileNotFoundError) as e:
        logging.debug("Traceback:", exc_info=True)
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    with open(result["files"]["markdown"], encoding="utf-8") as f:
        print(f.read(), flush=True)
    print(f"Wrote {result['files']['json']} and {result['files']['markdown']}.", flush=True)


def run_main():
    app.run(main)


if __name__ == "__main__":
    run_main()
