"""What a method declares about each translation path it exports.

``TranslationModel.translation_paths()`` returns ``{name: Path}``. A ``Path`` holds the
functional ``keras.Model`` the export stage freezes and, for each of its inputs and outputs,
what kind of tensor it is. Metadata, parity feeds, int8 calibration, ``export.runtime``, the
service and the web page read these declarations; nothing is guessed from a tensor's name.

    Path(
        model=self.gen,                                   # inputs named "image", "target_domain"
        inputs=(Image("image"), OneHot("target_domain", labels=("mnist", "mnist_m"))),
        outputs=(Image("translated"),),
        source_domain=None, target_domain=None, description="G(x, c)",
    )

Plain Python (no TensorFlow import): ``to_metadata`` gives the ``metadata.json`` entry of
each declaration (see ``export.metadata``).
"""

import dataclasses
from typing import Any

IMAGE_RANGE = (-1.0, 1.0)


def uniform(low=-1.0, high=1.0):
    """A noise prior: U(low, high) per entry."""
    return {"distribution": "uniform", "low": float(low), "high": float(high)}


def normal(mean=0.0, stddev=1.0):
    """A noise prior: N(mean, stddev^2) per entry."""
    return {"distribution": "normal", "mean": float(mean), "stddev": float(stddev)}


def prior_text(prior):
    """``{"distribution": "uniform", "low": -1, "high": 1}`` -> ``"uniform(-1, 1)"``."""
    kind = prior["distribution"]
    if kind == "uniform":
        return f"uniform({prior['low']:g}, {prior['high']:g})"
    if kind == "normal":
        return f"normal({prior['mean']:g}, {prior['stddev']:g})"
    raise ValueError(f"Unknown prior distribution {kind!r}: use uniform or normal.")


def _shape(shape):
    return [None if d is None or int(d) < 0 else int(d) for d in shape]


@dataclasses.dataclass(frozen=True)
class Image:
    """An NHWC float image in ``value_range`` (tanh outputs: [-1, 1])."""

    name: str
    value_range: tuple = IMAGE_RANGE
    kind = "image"

    def to_metadata(self, shape):
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": _shape(shape),
            "dtype": "float32",
            "value_range": [float(v) for v in self.value_range],
        }


@dataclasses.dataclass(frozen=True)
class OneHot:
    """A [N, D] one-hot condition; ``labels`` name the D entries in order.

    ``groups`` (``(("dataset", ("mnist", "mnist_m")), ("style", ("inverted", ...)))``) split the
    labels into named groups, e.g. StarGAN's mask vector; a runtime picks one label of a group.
    """

    name: str
    labels: tuple
    groups: tuple = ()
    kind = "onehot"

    def to_metadata(self, shape):
        spec = {
            "name": self.name,
            "kind": self.kind,
            "shape": _shape(shape),
            "dtype": "float32",
            "value_range": [0.0, 1.0],
            "labels": list(self.labels),
        }
        if self.groups:
            spec["groups"] = [{"name": g, "labels": list(ls)} for g, ls in self.groups]
        return spec


@dataclasses.dataclass(frozen=True)
class Noise:
    """A [N, D] latent code drawn from ``prior`` (``uniform(...)`` or ``normal(...)``)."""

    name: str
    prior: Any = dataclasses.field(default_factory=normal)
    kind = "noise"

    def to_metadata(self, shape):
        return {
            "name": self.name,
            "kind": self.kind,
            "shape": _shape(shape),
            "dtype": "float32",
            "prior": dict(self.prior),
            "distribution": prior_text(self.prior),
        }


@dataclasses.dataclass(frozen=True)
class Tensor:
    """Anything else, passed through unchanged."""

    name: str
    kind = "tensor"

    def to_metadata(self, shape):
        return {"name": self.name, "kind": self.kind, "shape": _shape(shape), "dtype": "float32"}


@dataclasses.dataclass
class Path:
    """One translation path: the model to freeze and its declared inputs and outputs.

    ``exported=False`` marks a direction the method serves in Python only (CoGAN's a2b by
    L-BFGS inversion): evaluation measures it, export skips it, and ``model`` may be None.
    """

    model: Any
    inputs: tuple
    outputs: tuple
    source_domain: Any = None
    target_domain: Any = None
    description: str = ""
    exported: bool = True
    extra: dict = dataclasses.field(default_factory=dict)

    def info(self):
        """The path's metadata.json ``paths`` entry."""
        return {
            "source_domain": self.source_domain,
            "target_domain": self.target_domain,
            "description": self.description,
            **self.extra,
        }

    def input_names(self):
        return [s.name for s in self.inputs]

    def output_names(self):
        return [s.name for s in self.outputs]


def image_path(model, source_domain, target_domain, description, value_range=IMAGE_RANGE):
    """The usual single-image path: ``image`` -> ``translated``."""
    return Path(
        model=model,
        inputs=(Image("image", value_range),),
        outputs=(Image("translated", value_range),),
        source_domain=source_domain,
        target_domain=target_domain,
        description=description,
    )
