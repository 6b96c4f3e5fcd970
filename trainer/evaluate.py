"""Evaluates a trained model_dir: transfer, UDA, generated samples, conditions, pairs, grids.

    python -m trainer.evaluate --model_dir=runs/cyclegan_mnist2mnistm
    python -m trainer.evaluate --model_dir=DIR --step=1000 --eval_examples=500 --data_dir=DATA

Writes DIR/metrics.json, DIR/metrics.md, DIR/eval_samples/ and TensorBoard scalars under
DIR/logs/eval, and prints the table. Classifiers used as judges are trained on first use and
cached in the data_dir (see trainer/eval/classifiers.py).
"""

import dataclasses
import sys

from absl import app, flags, logging

from trainer import console, io_utils

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
    "Metric groups to compute: transfer, uda, fid, class, paired, samples, steganography "
    "(default: all that apply to the method; naming one that does not apply, or a label "
    "group on a dataset without labels, is an error).",
)


def evaluate_model_dir(
    model_dir, step=None, eval_examples=None, data_dir=None, inception_weights=None, metrics=None
):
    """Restores ``model_dir`` (latest or ``step``) and evaluates it; returns the metrics dict."""
    import tensorflow as tf

    from trainer import checkpoints
    from trainer.eval.evaluate import evaluate

    trained = checkpoints.load_trained(model_dir, step)
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
    writer = tf.summary.create_file_writer(io_utils.join(model_dir, "logs", "eval"))
    return evaluate(trained.model, config, trained.step, writer=writer, metrics=metrics or None)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(
            f"error: unexpected arguments {' '.join(argv[1:])}: flags take the form --name=value."
        )
    try:
        if not FLAGS.model_dir:
            raise ValueError("--model_dir is required: the directory of a trained run.")
        checkpoints_lib().check_model_dir_path(FLAGS.model_dir)
        if io_utils.isdir(FLAGS.model_dir):
            console.quiet_libraries(log_path=io_utils.join(FLAGS.model_dir, console.RUN_LOG))
        result = evaluate_model_dir(
            FLAGS.model_dir,
            step=FLAGS.step,
            eval_examples=FLAGS.eval_examples,
            data_dir=FLAGS.data_dir,
            inception_weights=FLAGS.inception_weights,
            metrics=FLAGS.metrics,
        )
    except (ValueError, FileNotFoundError, PermissionError, NotADirectoryError) as e:
        logging.debug("Traceback:", exc_info=True)
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(io_utils.read_text(result["files"]["markdown"]), flush=True)
    print(f"Wrote {result['files']['json']} and {result['files']['markdown']}.", flush=True)


def checkpoints_lib():
    from trainer import checkpoints

    return checkpoints


def run_main():
    # Before TensorFlow is imported: native log lines go to the run log, not the console.
    console.quiet_libraries(verbosity=console.verbosity_from_argv(sys.argv))
    app.run(main)


if __name__ == "__main__":
    run_main()
