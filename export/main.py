"""Exports a trained model_dir: TFLite / ONNX / .keras / SavedModel, parity-checked.

python -m export.main --model_dir=runs/cyclegan [--formats=tflite,onnx] [--paths=a2b]
    [--export_dir=runs/cyclegan/export] [--allow_parity_failure]

The set in EXPORT_DIR is replaced as a whole (export/transaction.py). One export at a time per
EXPORT_DIR: a second is refused (exit 1) naming the holder of EXPORT_DIR.lock; a trainer may
keep writing checkpoints to MODEL_DIR meanwhile (the newest readable one is exported).
"""

import os
import sys

from trainer import console

# Before TensorFlow loads (export.api imports it): native log lines and library chatter go to
# MODEL_DIR/logs/run.log instead of burying the parity table; --verbosity=1 shows them.
if __name__ == "__main__" or os.path.basename(sys.argv[0]).startswith("img2img-"):
    console.quiet_libraries(verbosity=console.verbosity_from_argv(sys.argv))

from absl import app, flags  # noqa: E402

from export import api  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("model_dir", None, "A directory written by `python -m trainer.main`.")
flags.register_validator(
    "model_dir",
    bool,
    message="--model_dir is required: the directory a training run wrote "
    "(python -m export.main --model_dir=runs/cyclegan).",
)
flags.DEFINE_alias("checkpoint_dir", "model_dir")
flags.DEFINE_list(
    "formats",
    list(api.DEFAULT_FORMATS),
    f"Comma list of formats to write: {', '.join(api.FORMATS)}.",
)
flags.DEFINE_list("paths", [], "Translation paths to export (default: all the method has).")
flags.DEFINE_string("export_dir", None, "Where artifacts go (default: MODEL_DIR/export).")
flags.DEFINE_bool(
    "allow_parity_failure", False, "Exit 0 even when an artifact misses its parity bound."
)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(
            f"error: unexpected arguments {' '.join(argv[1:])}: flags take the form --name=value."
        )
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required: the directory of a trained model.")
    if os.path.isdir(FLAGS.model_dir) or console.is_remote(FLAGS.model_dir):
        console.quiet_libraries(log_path=os.path.join(FLAGS.model_dir, console.RUN_LOG))
    try:
        result = api.export_model_dir(
            FLAGS.model_dir,
            formats=FLAGS.formats,
            allow_parity_failure=FLAGS.allow_parity_failure,
            paths=FLAGS.paths or None,
            export_dir=FLAGS.export_dir,
        )
    except (ValueError, OSError) as e:  # OSError: missing files, permissions (named inside)
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"metadata: {result['metadata']}")
    if result["below_bound"]:
        print(
            f"warning: {result['below_bound']} quantized variant(s) below their PSNR bound, "
            "kept and marked in metadata.json (see the table)."
        )
    if result["failed"]:
        print(f"{result['failed']} artifact(s) failed parity (allowed by --allow_parity_failure).")


def run_main():
    app.run(main)


if __name__ == "__main__":
    run_main()
