"""Every command-line flag, each with a default and a help string.

Method hyperparameters (``--lambda_cycle``, ``--pool_size`` ...) are declared by the methods
themselves (``HPARAMS`` in each method file) and defined here from the registry, so a new
method brings its flags with it. Their flag default is None, meaning "the method's default",
and the help text lists each method's default.
"""

import sys
import textwrap

from absl import flags

from trainer import config as config_lib
from trainer.flagfiles import CONFIG_DIR, resolve_flagfile_args  # noqa: F401 - part of the API

FLAGS = flags.FLAGS

# -- method and data --------------------------------------------------------------------
flags.DEFINE_string("method", "cyclegan", "Translation method (see trainer/methods/registry.py).")
flags.DEFINE_string(
    "dataset",
    "digits",
    "'digits' for the embedded digit domains, 'folder' for image folders under --data_dir "
    "(trainA/ trainB/ testA/ testB/ or train/<domain>/), or a TFDS catalog name already "
    "prepared in --data_dir (e.g. cycle_gan/horse2zebra).",
)
flags.DEFINE_string(
    "domain_a",
    "mnist",
    "Source domain (digits: mnist, digits, mnist_m, "
    "mnist_0_4, mnist_5_9; folder/TFDS: A or a folder name).",
)
flags.DEFINE_string("domain_b", "mnist_m", "Target domain.")
flags.DEFINE_list("domains", [], "Domains of multi-domain methods (comma list).")
flags.DEFINE_string(
    "data_dir",
    None,
    "Where datasets are built/read (default: TFDS's ~/tensorflow_datasets); "
    "for --dataset=folder the image folder root.",
)
flags.DEFINE_integer("image_size", 32, "Square image size the networks take.")
flags.DEFINE_integer("batch_size", 8, "Global batch size (split across replicas).")
flags.DEFINE_boolean("augment", False, "Resize-and-random-crop jitter on training images.")
flags.DEFINE_boolean("flip", False, "Random horizontal flips (off for digits).")
flags.DEFINE_boolean("strict_images", False, "Fail on a corrupt image file instead of skipping it.")
flags.DEFINE_integer("shuffle_buffer", 1000, "Shuffle buffer (images) per domain stream.")

# -- training loop ------------------------------------------------------------------------
flags.DEFINE_string(
    "model_dir",
    "runs/default",
    "Checkpoints, logs, samples, metrics and exports go here; "
    "rerunning with the same directory resumes.",
)
flags.DEFINE_integer(
    "train_steps", 1000, "Total optimisation steps (a resumed run continues to it)."
)
flags.DEFINE_integer(
    "checkpoint_every", 500, "Steps between checkpoints (one is also written at the end)."
)
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept on disk.")
flags.DEFINE_integer("sample_every", 500, "Steps between sample grids (0 = only at the end).")
flags.DEFINE_integer("eval_every", 0, "Steps between evaluations (0 = only at the end).")
flags.DEFINE_integer(
    "log_every",
    50,
    "Steps between progress lines (when the output is not a terminal) and TensorBoard scalars.",
)
flags.DEFINE_integer(
    "steps_per_loop", 10, "Steps run inside one tf.function call (fewer host round trips)."
)
flags.DEFINE_enum(
    "strategy",
    "default",
    list(config_lib.STRATEGIES),
    "tf.distribute strategy: default (one device), one_device, mirrored (all local "
    "GPUs, or --cpu_devices CPUs), multi_worker (TF_CONFIG), tpu (--tpu).",
)
flags.DEFINE_integer(
    "cpu_devices", 1, "Split the CPU into N logical devices (mirrored training without GPUs)."
)
flags.DEFINE_string(
    "tpu", "", "TPU name or address for --strategy=tpu ('' = local / from the environment)."
)
flags.DEFINE_boolean(
    "mixed_precision", False, "mixed_float16 compute on GPUs (mixed_bfloat16 on TPUs)."
)
flags.DEFINE_boolean("jit_compile", False, "XLA-compile the per-replica train step.")
flags.DEFINE_integer("seed", 0, "Random seed (data order, initialisation, noise).")
flags.DEFINE_list(
    "export_formats",
    list(config_lib.DEFAULT_EXPORT_FORMATS),
    f"Formats exported after training: {', '.join(config_lib.EXPORT_FORMATS)} (onnx_int8, "
    "static int8 ONNX for services, only on request); 'none' skips export.",
)
flags.DEFINE_boolean(
    "allow_parity_failure", False, "Keep going when an exported model misses its parity bound."
)

# -- evaluation ---------------------------------------------------------------------------
flags.DEFINE_integer("eval_examples", 1000, "Test images per domain used by evaluation.")
flags.DEFINE_string(
    "inception_weights",
    None,
    "InceptionV3 weights file (no top) for Inception FID/KID; "
    "none = digit-classifier features only. Never downloaded.",
)

# What --help shows, in this order (every project flag is in one group; tests check it).
HELP_GROUPS = (
    (
        "run",
        (
            "flagfile",
            "method",
            "model_dir",
            "strategy",
            "cpu_devices",
            "tpu",
            "seed",
            "export_formats",
            "allow_parity_failure",
            "verbosity",
        ),
    ),
    (
        "data",
        (
            "dataset",
            "domain_a",
            "domain_b",
            "domains",
            "data_dir",
            "image_size",
            "batch_size",
            "augment",
            "flip",
            "strict_images",
            "shuffle_buffer",
        ),
    ),
    (
        "training",
        (
            "train_steps",
            "checkpoint_every",
            "keep_checkpoints",
            "sample_every",
            "eval_every",
            "log_every",
            "steps_per_loop",
            "mixed_precision",
            "jit_compile",
        ),
    ),
    ("evaluation", ("eval_examples", "inception_weights")),
)

_EXTRA_HELP = {
    "flagfile": "A file of flags, one per line; a bare name (cyclegan.flags) resolves to the "
    "flagfiles shipped in trainer/configs/. A --flagfile=NAME line includes another file there "
    "(NAME beside it first); later lines override it.",
    "verbosity": "0 (default): library and TensorFlow log lines go to MODEL_DIR/logs/run.log; "
    "1 or more: they stay on the console.",
}

_method_flags_defined = False


def define_method_flags():
    """Defines one flag per method hyperparameter, from the registry (idempotent)."""
    global _method_flags_defined
    if _method_flags_defined:
        return
    from trainer.methods import METHODS

    specs = {}
    for name, cls in sorted(METHODS.items()):
        for key, spec in cls.hparam_specs().items():
            specs.setdefault(key, []).append((name, spec))
    for key, entries in sorted(specs.items()):
        kinds = {type(spec.default) for _, spec in entries}
        if len(kinds) > 1:
            raise TypeError(f"Hyperparameter {key} has conflicting types {kinds} across methods.")
        kind = kinds.pop()
        defaults = {}
        for method, spec in entries:
            defaults.setdefault(repr(spec.default), []).append(method)
        if len(defaults) == 1:
            default_text = f"default {next(iter(defaults))}"
        else:
            default_text = "defaults: " + "; ".join(
                f"{', '.join(ms)} {d}" for d, ms in sorted(defaults.items())
            )
        help_text = f"{entries[0][1].help} ({default_text})"
        if kind is bool:
            flags.DEFINE_boolean(key, None, help_text)
        elif kind is int:
            flags.DEFINE_integer(key, None, help_text)
        elif kind is float:
            flags.DEFINE_float(key, None, help_text)
        elif kind is str:
            flags.DEFINE_string(key, None, help_text)
        else:
            raise TypeError(f"Hyperparameter {key} has unsupported type {kind}.")
    FLAGS["method"].help = (
        f"Translation method: one of {', '.join(sorted(METHODS))} (the registry in "
        "trainer/methods/registry.py)."
    )
    _method_flags_defined = True


def _flag_line(name, default, text, width=100):
    head = f"  --{name}"
    if default not in (None, ""):
        value = ",".join(map(str, default)) if isinstance(default, list | tuple) else default
        head += f"={value}"
    lines = textwrap.wrap(text, width=width - 8) or [""]
    out = [head] + [f"        {line}" for line in lines]
    return "\n".join(out)


def help_text():
    """The project's flags grouped (run, data, training, evaluation, each method's
    hyperparameters with that method's default)."""
    from trainer.methods import METHODS

    define_method_flags()
    sections = [
        "Trains, evaluates and exports an image-to-image translation model.",
        "",
        "  python -m trainer.main --flagfile=cyclegan.flags [--flag=value ...]",
        "",
        "Later flags override a flagfile's. --helpfull also lists absl's and TensorFlow's flags.",
    ]
    for title, names in HELP_GROUPS:
        sections += ["", f"{title} flags:"]
        for name in names:
            if name in _EXTRA_HELP:
                default = FLAGS[name].default if name in FLAGS else None
                if name == "verbosity":
                    default = 0
                sections.append(_flag_line(name, default, _EXTRA_HELP[name]))
            else:
                flag = FLAGS[name]
                sections.append(_flag_line(name, flag.default, flag.help))
    # Hyperparameters every method has with the same default, then each method's own.
    per_method = {m: cls.hparam_specs() for m, cls in sorted(METHODS.items())}
    keys = set.intersection(*(set(s) for s in per_method.values())) if per_method else set()
    shared = sorted(
        k for k in keys if len({repr(specs[k].default) for specs in per_method.values()}) == 1
    )
    if shared:
        sections += ["", "hyperparameters of every method:"]
        any_specs = next(iter(per_method.values()))
        for key in shared:
            sections.append(_flag_line(key, any_specs[key].default, any_specs[key].help))
    for method, specs in per_method.items():
        own = [k for k in sorted(specs) if k not in shared]
        if not own:
            continue
        sections += ["", f"--method={method} hyperparameters (this method's defaults):"]
        for key in own:
            sections.append(_flag_line(key, specs[key].default, specs[key].help))
    return "\n".join(sections) + "\n"


def handle_help(argv):
    """``--help`` (``-h``, ``--helpshort``) prints the project's flags and exits 0;
    ``--helpfull`` adds every flag of the libraries too and exits 0."""
    wanted = {a.split("=", 1)[0] for a in argv[1:]}
    full = bool(wanted & {"--helpfull", "-helpfull"})
    short = bool(wanted & {"--help", "-help", "-h", "--helpshort", "-helpshort", "-?"})
    if not (full or short):
        return
    text = help_text()
    if full:
        text += "\nEvery flag, including absl's and TensorFlow's:\n\n" + FLAGS.get_help() + "\n"
    sys.stdout.write(text)
    sys.stdout.flush()
    sys.exit(0)


def _domain_pair(cls, hparams):
    """(--domain_a, --domain_b); on a folder of A|B pairs its halves, source first, by
    --direction: a pair's halves have no other names (a flagfile's digit domains are ignored)."""
    if not (FLAGS.dataset == "folder" and cls.DATA == "paired"):
        return FLAGS.domain_a, FLAGS.domain_b
    from trainer.data import paired

    halves = paired.folder_domains(hparams.get("direction", "AtoB"))
    given = (FLAGS.domain_a, FLAGS.domain_b)
    if any(FLAGS[f].present for f in ("domain_a", "domain_b")) and given != halves:
        from absl import logging

        logging.warning(
            "--dataset=folder holds A|B pairs: the domains are its halves %s -> %s (by "
            "--direction), not --domain_a=%s --domain_b=%s.",
            *halves,
            *given,
        )
    return halves


def config_from_flags():
    """Builds and validates the Config from parsed FLAGS."""
    from trainer.methods import get as get_method

    cls = get_method(FLAGS.method)
    specs = cls.hparam_specs()
    hparams = {}
    for key, spec in specs.items():
        value = FLAGS[key].value
        hparams[key] = spec.default if value is None else value
    ignored = sorted(
        key for key in _all_method_flag_names() if key not in specs and FLAGS[key].value is not None
    )
    if ignored:
        from absl import logging

        logging.warning("Method %s ignores %s.", FLAGS.method, ", ".join(f"--{k}" for k in ignored))
    export_formats = tuple(f for f in FLAGS.export_formats if f and f != "none")
    if "none" in FLAGS.export_formats and export_formats:
        raise ValueError("--export_formats=none cannot be combined with other formats.")
    domain_a, domain_b = _domain_pair(cls, hparams)
    data = config_lib.DataConfig(
        dataset=FLAGS.dataset,
        domain_a=domain_a,
        domain_b=domain_b,
        domains=tuple(FLAGS.domains),
        data_dir=FLAGS.data_dir,
        image_size=FLAGS.image_size,
        batch_size=FLAGS.batch_size,
        augment=FLAGS.augment,
        flip=FLAGS.flip,
        strict_images=FLAGS.strict_images,
        shuffle_buffer=FLAGS.shuffle_buffer,
    )
    train = config_lib.TrainConfig(
        model_dir=FLAGS.model_dir,
        train_steps=FLAGS.train_steps,
        checkpoint_every=FLAGS.checkpoint_every,
        keep_checkpoints=FLAGS.keep_checkpoints,
        sample_every=FLAGS.sample_every,
        eval_every=FLAGS.eval_every,
        log_every=FLAGS.log_every,
        steps_per_loop=FLAGS.steps_per_loop,
        strategy=FLAGS.strategy,
        cpu_devices=FLAGS.cpu_devices,
        tpu=FLAGS.tpu,
        mixed_precision=FLAGS.mixed_precision,
        jit_compile=FLAGS.jit_compile,
        seed=FLAGS.seed,
        export_formats=export_formats,
        allow_parity_failure=FLAGS.allow_parity_failure,
    )
    evaluation = config_lib.EvalConfig(
        eval_examples=FLAGS.eval_examples, inception_weights=FLAGS.inception_weights
    )
    config = config_lib.Config(
        method=FLAGS.method,
        data=data,
        train=train,
        eval=evaluation,
        hparams=config_lib.HParams(hparams),
    )
    config_lib.validate(config)
    cls.validate_config(config)
    return config


def _all_method_flag_names():
    from trainer.methods import METHODS

    names = set()
    for cls in METHODS.values():
        names.update(cls.hparam_specs())
    return names
