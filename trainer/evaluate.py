"""Evaluates a trained model_dir: transfer, UDA, generated samples, conditions, pairs, grids.

    python -m trainer.evaluate --model_dir=runs/cyclegan_mnist2mnistm
    python -m trainer.evaluate --model_dir=DIR --step=1000 --eval_examples=500 --data_dir=DATA
    python -m trainer.evaluate --model_dir=DIR --step=500 --output_dir=DIR/at_500

Writes DIR/metrics.json, DIR/metrics.md, DIR/eval_samples/ and TensorBoard scalars under
DIR/logs/eval (or the same under --output_dir, so an earlier step is scored without
replacing the run's own report), and prints the table. Classifiers used as judges are trained on first use and
cached in the data_dir (see trainer/eval/classifiers.py).
"""

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
    "output_dir",
    None,
    "Where metrics.json, metrics.md, eval_samples/ and logs/eval go (default: --model_dir); "
    "e.g. to score an earlier --step and keep the run's final report.",
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
        from trainer.eval.evaluate import evaluate_model_dir

        result = evaluate_model_dir(
            FLAGS.model_dir,
            step=FLAGS.step,
            eval_examples=FLAGS.eval_examples,
            data_dir=FLAGS.data_dir,
            inception_weights=FLAGS.inception_weights,
            metrics=FLAGS.metrics,
            output_dir=FLAGS.output_dir,
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
