"""What the judges allow: the scores a faithful translation would get, drawn by hand.

    python bench/judge_ceiling.py                          # StarGAN's five domains, UDA pairs
    python bench/judge_ceiling.py --domains=mnist,digits --uda_targets=digits

The embedded domains are renderings of two sets of grey digits (MNIST, and the UCI digits for
``digits``), so a translation that keeps every stroke can be drawn without a network: the
source's test digits rendered the way the target domain was built
(``trainer.eval.ceiling.analytic``). Two tables:

- **Digit kept, per target**: each target's digit judge (the evaluation's, from its cache) reads
  the source test digits so rendered, sources split evenly as ``score_conditional_translation``
  splits them. No trained G(x, c) can be expected above this under these judges: a judge trained
  on one set of writers reads the other set's shapes less well, whatever their style. With
  ``digits`` among MNIST-based domains the table is printed again under the cross-writer judge
  the evaluation uses there (``classifiers.cross_writer_classifier``).
- **UDA by translation**: a digit classifier trained on the source's training digits rendered as
  the target (labels are the source's) reads the target's real test images. That is what a
  perfect translation would give a classifier trained on translated source images (UNIT's and
  CoGAN's ``--uda`` heads); source-only (the training digits as they are) beside it.
"""

import os
import sys

from absl import app, flags

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

FLAGS = flags.FLAGS
flags.DEFINE_list(
    "domains",
    ["mnist", "mnist_m", "digits", "mnist_inverted", "mnist_colored"],
    "The target and source domains of the digit-kept table (stargan.flags' --domains).",
)
flags.DEFINE_list(
    "uda_targets", ["digits", "mnist_m"], "Targets of the UDA table, MNIST the labelled source."
)
flags.DEFINE_list("seeds", ["0", "1"], "Classifier seeds of the UDA table (one column each).")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: TFDS's).")
flags.DEFINE_integer("texture_seed", 7, "Seed of the photo crops and colours drawn on.")


def main(argv):
    del argv
    from trainer.eval import ceiling, classifiers

    print("## Digit kept by an analytic translation (each target's digit judge)\n", flush=True)
    print(ceiling.digit_kept_table(FLAGS.domains, FLAGS.data_dir, FLAGS.texture_seed), flush=True)
    if classifiers.needs_cross_writer_judge("digits", FLAGS.domains):
        judge = classifiers.cross_writer_classifier(FLAGS.domains, data_dir=FLAGS.data_dir)
        print("\n## The same, read by the cross-writer judge (StarGAN's digit kept)\n")
        print(
            ceiling.digit_kept_table(
                FLAGS.domains, FLAGS.data_dir, FLAGS.texture_seed, judge=judge
            ),
            flush=True,
        )
    print("\n## UDA by translation: a classifier trained on MNIST rendered as the target\n")
    ceiling.uda_table(FLAGS.uda_targets, FLAGS.seeds, FLAGS.texture_seed)


if __name__ == "__main__":
    app.run(main)
