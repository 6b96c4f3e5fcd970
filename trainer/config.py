"""Frozen, validated configuration built from flags (or from a model_dir's config.json)."""

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from trainer import io_utils

# Every export format --export_formats takes (export.metadata reads this list);
# onnx_int8 (static int8 ONNX for services) is written on request only.
EXPORT_FORMATS = ("tflite", "onnx", "keras", "savedmodel", "onnx_int8")
DEFAULT_EXPORT_FORMATS = EXPORT_FORMATS[:4]

STRATEGIES = ("default", "one_device", "mirrored", "multi_worker", "tpu")


class HParams(Mapping):
    """Read-only method hyperparameters with attribute access (``hp.lambda_cycle``)."""

    def __init__(self, values):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"No hyperparameter {name!r}; this method has {', '.join(sorted(self._values))}."
            ) from None

    def __setattr__(self, name, value):
        raise dataclasses.FrozenInstanceError(f"HParams are read-only (tried to set {name}).")

    def __getitem__(self, key):
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def __repr__(self):
        return f"HParams({self._values!r})"

    def __eq__(self, other):
        return isinstance(other, Mapping) and dict(self) == dict(other)

    def __hash__(self):
        return hash(json.dumps(self._values, sort_keys=True, default=str))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    dataset: str = "digits"
    domain_a: str = "mnist"
    domain_b: str = "mnist_m"
    domains: tuple = ()
    data_dir: str | None = None
    image_size: int = 32
    batch_size: int = 8
    augment: bool = False
    flip: bool = False
    strict_images: bool = False
    shuffle_buffer: int = 1000


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    model_dir: str = "runs/default"
    train_steps: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    sample_every: int = 500
    eval_every: int = 0
    log_every: int = 50
    steps_per_loop: int = 10
    strategy: str = "default"
    cpu_devices: int = 1
    tpu: str = ""
    mixed_precision: bool = False
    jit_compile: bool = False
    seed: int = 0
    export_formats: tuple = DEFAULT_EXPORT_FORMATS
    allow_parity_failure: bool = False


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    eval_examples: int = 1000
    inception_weights: str | None = None


@dataclasses.dataclass(frozen=True)
class Config:
    method: str
    data: DataConfig
    train: TrainConfig
    eval: EvalConfig
    hparams: Any

    def to_dict(self):
        return {
            "method": self.method,
            "data": dataclasses.asdict(self.data),
            "train": dataclasses.asdict(self.train),
            "eval": dataclasses.asdict(self.eval),
            "hparams": dict(self.hparams),
        }

    @classmethod
    def from_dict(cls, d):
        def part(klass, values):
            names = {f.name for f in dataclasses.fields(klass)}
            kept = {
                k: tuple(v) if isinstance(v, list) else v for k, v in values.items() if k in names
            }
            return klass(**kept)

        return cls(
            method=d["method"],
            data=part(DataConfig, d.get("data", {})),
            train=part(TrainConfig, d.get("train", {})),
            eval=part(EvalConfig, d.get("eval", {})),
            hparams=HParams(d.get("hparams", {})),
        )

    @classmethod
    def load(cls, model_dir):
        from trainer import io_utils

        path = io_utils.join(model_dir, "config.json")
        if not io_utils.exists(path):
            raise FileNotFoundError(
                f"{path} does not exist: --model_dir must be a directory written by "
                "`python -m trainer.main` (it holds config.json and checkpoints/)."
            )
        values = io_utils.read_json(path)
        try:
            return cls.from_dict(values)
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(
                f"{path} is not a run configuration ({type(e).__name__}: {e}): restore the "
                "file from the run that wrote it, or pass a new --model_dir."
            ) from None

    def replace(self, **parts):
        return dataclasses.replace(self, **parts)


def validate(config):
    """Checks cross-field constraints; raises ValueError naming the flag and the fix."""
    t, d = config.train, config.data
    if t.strategy not in STRATEGIES:
        raise ValueError(
            f"Unknown --strategy={t.strategy!r}: choose one of {', '.join(STRATEGIES)}."
        )
    if t.train_steps < 0:
        raise ValueError(f"--train_steps must be >= 0, got {t.train_steps}.")
    problem = io_utils.pattern_path_problem(t.model_dir)
    if problem:  # refused before a run trains for nothing
        raise ValueError(f"--model_dir={problem}.")
    for name in (
        "checkpoint_every",
        "keep_checkpoints",
        "steps_per_loop",
        "cpu_devices",
        "log_every",
    ):
        if getattr(t, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(t, name)}.")
    for name in ("sample_every", "eval_every"):
        if getattr(t, name) < 0:
            raise ValueError(f"--{name} must be >= 0 (0 turns it off), got {getattr(t, name)}.")
    if d.batch_size < 1:
        raise ValueError(f"--batch_size must be >= 1, got {d.batch_size}.")
    if d.image_size < 8:
        raise ValueError(f"--image_size must be >= 8, got {d.image_size}.")
    unknown = [f for f in t.export_formats if f not in EXPORT_FORMATS]
    if unknown:
        raise ValueError(
            f"Unknown --export_formats {', '.join(unknown)}: use a comma list of "
            f"{', '.join(EXPORT_FORMATS)}, or none."
        )
    if t.strategy == "tpu" and t.mixed_precision:
        pass  # mixed_bfloat16 is chosen for TPUs in train_lib.
    return config
