"""Every command-line flag, each with a default and a help string.

Method hyperparameters (``--lambda_cycle``, ``--pool_size`` ...) are declared by the methods
themselves (``HPARAMS`` in each method file) and defined here from the registry, so a new
method brings its flags with it. Their flag default is None, meaning "the method's default",
and the help text lists each method's default.
"""

import os

from absl import flags

from trainer import config as config_lib

FLAGS = flags.FLAGS
CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")

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
flags.DEFINE_integer("log_every", 50, "Steps between TensorBoard scalar summaries.")
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
    ["tflite", "onnx", "keras", "savedmodel"],
    "Formats exported after training: tflite, onnx, keras, savedmodel, onnx_int8 (static "
    "int8 for services, not in the default); 'none' skips export.",
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
    _method_flags_defined = True


def resolve_flagfile_args(argv):
    """Lets ``--flagfile=NAME`` name a flagfile shipped in trainer/configs/.

    A value that is a path to an existing file is kept; otherwise ``trainer/configs/NAME`` (and
    NAME + '.flags') is tried, so the shipped configs work from any directory after install.
    """
    out = []
    for arg in argv:
        for prefix in ("--flagfile=", "-flagfile="):
            if arg.startswith(prefix):
                value = arg[len(prefix) :]
                if not os.path.exists(value):
                    for candidate in (value, f"{value}.flags"):
                        shipped = os.path.join(CONFIG_DIR, candidate)
                        if os.path.exists(shipped):
                            arg = prefix + shipped
                            break
                    else:
                        shipped = sorted(f for f in os.listdir(CONFIG_DIR) if f.endswith(".flags"))
                        raise SystemExit(
                            f"Flagfile {value!r} not found in the working directory nor among the "
                            f"shipped configs ({', '.join(shipped)})."
                        )
                break
        out.append(arg)
    return out


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
    data = config_lib.DataConfig(
        dataset=FLAGS.dataset,
        domain_a=FLAGS.domain_a,
        domain_b=FLAGS.domain_b,
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
    if hasattr(cls, "validate_config"):
        cls.validate_config(config)
    return config


def _all_method_flag_names():
    from trainer.methods import METHODS

    names = set()
    for cls in METHODS.values():
        names.update(cls.hparam_specs())
    return names
