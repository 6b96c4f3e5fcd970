"""Exports a trained model_dir: TFLite / ONNX / .keras / SavedModel, parity-checked.

python -m export.main --model_dir=runs/cyclegan [--formats=tflite,onnx] [--paths=a2b]
    [--export_dir=runs/cyclegan/export] [--allow_parity_failure]
"""

import logging as pylogging
import os
import sys

# Before TensorFlow loads: its C++ info lines would bury the parity table.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402

from export import api  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_string("model_dir", None, "A directory written by `python -m trainer.main`.")
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
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS.model_dir:
        raise ValueError("--model_dir is required: the directory of a trained model.")
    logging.set_verbosity(logging.WARNING)
    pylogging.getLogger("tf2onnx").setLevel(pylogging.WARNING)
    try:
        result = api.export_model_dir(
            FLAGS.model_dir,
            formats=FLAGS.formats,
            allow_parity_failure=FLAGS.allow_parity_failure,
            paths=FLAGS.paths or None,
            export_dir=FLAGS.export_dir,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(f"metadata: {result['metadata']}")
    if result["failed"]:
        print(f"{result['failed']} artifact(s) failed parity (allowed by --allow_parity_failure).")


def run_main():
    app.run(main)


if __name__ == "__main__":
    run_main()
