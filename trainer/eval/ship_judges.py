"""Copies cached default-recipe judges of the embedded digit domains into the package.

    python -m trainer.eval.ship_judges [--data_dir=DIR] [--judges=mnist,mnist_m,...]

The copies (``trainer/eval/reference_judges/digits-<version>/``) are what a machine without a
cached judge loads instead of training one (``classifiers.REFERENCE_DIR``). Each is written
without its optimizer state (a third of the file), atomically, with its ``.json``. Run it after
``classifiers.RECIPE_VERSION`` changes, once the judges below have been trained at the new
recipe (any evaluation of the shipped flagfiles trains them; ``bench/judge_ceiling.py`` trains
the cross-writer ones), and commit the result with the figures measured under it.
"""

import os
import sys

from absl import app, flags

from trainer import io_utils
from trainer.eval import classifiers

_STAR = "mnist,mnist_m,digits,mnist_inverted,mnist_colored".split(",")
_CROSS = "_".join(sorted(_STAR))
# The judges of the main job (unit.flags), the UDA pairs and StarGAN's two runs: each domain's
# class judge, the pair and multi-domain classifiers, and the cross-writer judges (3-4 minutes
# of training each). Judges of other domain sets (mnist_vs_mnist_inverted ...) take seconds
# to train and are trained on first use.
SHIPPED = (
    "mnist",
    "mnist_m",
    "digits",
    "mnist_inverted",
    "mnist_colored",
    "mnist_vs_mnist_m",
    "mnist_vs_digits",
    "_vs_".join(_STAR),
    "_vs_".join([*_STAR, "mnist_thick"]),
    f"{classifiers.CROSS_WRITER}_{_CROSS}",
    f"{classifiers.CROSS_WRITER}_{'_'.join(sorted([*_STAR, 'mnist_thick']))}",
)

FLAGS = flags.FLAGS


def ship(names, data_dir=None, out_root=classifiers.REFERENCE_DIR, cache_root=None):
    """Copies the cached judges ``names`` of the digit domains into ``out_root``; returns the
    paths written. Raises FileNotFoundError naming any judge that is not cached at this recipe."""
    source = classifiers.cache_dir("digits", [], data_dir, cache_root)
    target = os.path.join(out_root, os.path.basename(source))
    loaded, missing = {}, []
    for name in names:
        found = classifiers._load_cached(os.path.join(source, f"{name}.keras"))
        if found is None:
            missing.append(name)
        else:
            loaded[name] = found
    if missing:
        raise FileNotFoundError(
            f"No usable cached judge of recipe {classifiers.RECIPE_VERSION} for "
            f"{', '.join(missing)} in {source}: run the evaluations that train them first."
        )
    written = []
    for name, (model, info) in loaded.items():
        path = os.path.join(target, f"{name}.keras")
        classifiers._save_keras(model, path)  # loaded without its optimizer: weights only
        io_utils.atomic_write_json(classifiers._info_path(path), info)
        written.append(path)
        print(f"{path}: test accuracy {info['test_accuracy']:.4f}", flush=True)
    return written


def main(argv):
    del argv
    try:
        ship(FLAGS.judges, FLAGS.data_dir)
    except FileNotFoundError as e:
        sys.exit(str(e))


def define_flags():
    """The command line's flags, defined only when it runs: importing the module beside the
    trainer (whose flags include --data_dir) must not define them twice."""
    flags.DEFINE_string(
        "data_dir", None, "Data directory whose judge cache is copied (default: TFDS')."
    )
    flags.DEFINE_list("judges", list(SHIPPED), "Judge names (file names without .keras) to copy.")


if __name__ == "__main__":
    define_flags()
    app.run(main)
