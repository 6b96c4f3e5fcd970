"""Trains, evaluates, samples and exports a translation model.

    python -m trainer.main --flagfile=unit.flags
    python -m trainer.main --method=cyclegan --domain_a=mnist --domain_b=mnist_m --train_steps=2000

A bare --flagfile name that is not a file in the working directory resolves to the flagfiles
shipped in trainer/configs/. Every flag has a default; --help lists the project's flags.

The stages run in one direction: train (trainer/train_lib.py) -> evaluate (trainer/eval) ->
export (export/). Library chatter goes to MODEL_DIR/logs/run.log; --verbosity=1 shows it.
"""

import os
import sys

from trainer import console

# Problems of the input or the environment that end with their message, not a traceback.
USER_ERRORS = (
    ValueError,
    FileNotFoundError,
    FloatingPointError,
    PermissionError,
    NotADirectoryError,
)


def main(argv):
    from absl import app, logging

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    from trainer import flags as flags_lib

    try:
        config = flags_lib.config_from_flags()
        console.quiet_libraries(log_path=_run_log(config.train.model_dir))
        summary = run(config)
    except USER_ERRORS as e:
        # User-facing problems (a bad flag, a missing folder, a diverged run) end with their
        # message, not a traceback; --verbosity=1 shows the traceback too.
        logging.debug("Traceback:", exc_info=True)
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(1)
    print(report(summary), flush=True)


def _run_log(model_dir):
    """MODEL_DIR/logs/run.log, unless model_dir is a regular file (the run reports that)."""
    if not console.is_remote(model_dir) and os.path.exists(model_dir):
        if not os.path.isdir(model_dir):
            return None
    return os.path.join(model_dir, console.RUN_LOG)


def run(config):
    """train -> evaluate -> export; returns the summary train_lib.report prints."""
    from trainer import train_lib

    result = train_lib.run(config)
    summary = result.summary
    if result.chief:
        summary["metrics"] = train_lib.final_evaluation(result)
        if config.train.export_formats:
            summary["export"] = export(config)
    return summary


def export(config):
    """The export stage on the run's model_dir (main composes the stages; the loop never
    imports export)."""
    try:
        from export.api import export_model_dir
    except ImportError:
        console.warn("The export stage is not installed; skipping export.")
        return None
    return export_model_dir(
        config.train.model_dir,
        formats=config.train.export_formats,
        allow_parity_failure=config.train.allow_parity_failure,
    )


def report(summary):
    """The end-of-run summary: training's (first line ``Trained to step N ...``), then the
    exported artifacts, with quantized variants below their parity bound called out."""
    from trainer import io_utils, train_lib

    lines = [train_lib.report(summary)]
    exported = summary.get("export")
    if exported:
        export_dir = exported.get("export_dir") or io_utils.join(summary["model_dir"], "export")
        lines.append(f"  exported    : {export_dir}")
        for line in exported.get("headline", []):
            lines.append(f"    {line}")
        lines += _below_bound_lines(exported)
    return "\n".join(lines)


def _below_bound_lines(exported):
    from export import verify
    from export.metadata import BELOW_BOUND

    below = [a for a in exported.get("artifacts") or [] if a.get("status") == BELOW_BOUND]
    if not below:
        return []
    lines = [
        f"  BELOW BOUND : {len(below)} quantized variant(s) missed their PSNR bound; they are "
        'kept, marked "below bound" in metadata.json, and refused by the runtimes unless '
        "explicitly allowed:"
    ]
    lines += [f"    ! {verify.headline(a)}" for a in below]
    return lines


def run_main():
    # Before TensorFlow is imported (the method registry imports it): native log lines go
    # to a log file, not above the project's messages.
    console.quiet_libraries(verbosity=console.verbosity_from_argv(sys.argv))
    from absl import app

    from trainer import flags as flags_lib

    flags_lib.define_method_flags()
    flags_lib.handle_help(sys.argv)
    argv = flags_lib.resolve_flagfile_args(sys.argv)
    app.run(main, argv=argv)


if __name__ == "__main__":
    run_main()
