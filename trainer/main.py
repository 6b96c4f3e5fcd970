"""Trains, evaluates, samples and exports a translation model.

    python -m trainer.main --flagfile=unit.flags
    python -m trainer.main --method=cyclegan --domain_a=mnist --domain_b=mnist_m --train_steps=2000

A bare --flagfile name that is not a file in the working directory resolves to the flagfiles
shipped in trainer/configs/. Every flag has a default; --helpfull lists them.
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, logging  # noqa: E402

from trainer import flags as flags_lib  # noqa: E402


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from trainer import train_lib

    try:
        config = flags_lib.config_from_flags()
        summary = train_lib.run(config)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        # User-facing problems (a bad flag, a missing folder, a diverged run) end with their
        # message, not a traceback; --verbosity=1 shows the traceback too.
        logging.debug("Traceback:", exc_info=True)
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(train_lib.report(summary), flush=True)


def run_main():
    flags_lib.define_method_flags()
    argv = flags_lib.resolve_flagfile_args(sys.argv)
    app.run(main, argv=argv)


if __name__ == "__main__":
    run_main()
