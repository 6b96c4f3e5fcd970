"""The ``metadata.json`` written beside exported models, and the pieces it is made of.

Plain Python only (no TensorFlow): ``export.runtime`` reads this file on devices.

Layout (``FORMAT_VERSION`` 1)::

    {
      "format_version": 1,
      "method": "cyclegan", "step": 1000, "checkpoint": "checkpoints/ckpt-1000",
      "image_size": 256, "domains": ["horse", "zebra"], "value_range": [-1.0, 1.0],
      "paths": {"a2b": {"source_domain": "horse", "target_domain": "zebra", ...}},
      "artifacts": [
        {
          "file": "a2b.onnx", "path": "a2b", "format": "onnx", "precision": "fp32",
          "runtime": "onnxruntime", "status": "ok", "size_bytes": 45678,
          "inputs": [{"name": "image", "kind": "image", "shape": [null, 256, 256, 3],
                      "dtype": "float32", "value_range": [-1.0, 1.0]}],
          "outputs": [{"name": "translated", "kind": "image", ...}],
          "parity": {"bound": {...}, "test_images": {...}, "random": {...}, "passed": true},
          "method": ..., "step": ..., "image_size": ..., "domains": ..., ...
        }
      ]
    }

``checkpoint`` is relative to the model dir: nothing shipped with a model names a directory of
the machine that trained it.

Every artifact entry repeats the run-level fields (method, step, checkpoint, image size,
domains, path info), so one entry describes its file completely; the same entry is stored in
the ONNX model's ``metadata_props`` under ``ONNX_METADATA_KEY``.

Tensor kinds, declared by the method for every path input (nothing is guessed from names):
``image`` (NHWC float in ``value_range``), ``onehot`` (a [N, D] domain or class vector whose
``labels`` name the D entries; optional ``groups`` ``[{"name", "labels"}]`` split them, e.g.
StarGAN's mask vector), ``noise`` (a [N, D] latent code drawn from ``prior``:
``{"distribution": "uniform", "low": -1.0, "high": 1.0}`` or ``{"distribution": "normal",
"mean": 0.0, "stddev": 1.0}``; ``distribution`` repeats it as text, e.g. ``"uniform(-1, 1)"``)
and ``tensor`` (anything else, passed through unchanged). ``sample_prior`` draws from a prior;
parity feeds, int8 calibration and ``export.runtime`` all use it.
"""

import json
import numbers
import os

from trainer.config import DEFAULT_EXPORT_FORMATS, EXPORT_FORMATS
from trainer.methods.paths import prior_text  # noqa: F401  (metadata's text of a prior)

FORMAT_VERSION = 1
METADATA_FILE = "metadata.json"
ONNX_METADATA_KEY = "img2img.metadata"
IMAGE_VALUE_RANGE = (-1.0, 1.0)

# Artifact status values.
OK = "ok"
FAILED = "failed"  # written, but missed its parity bound
NOT_SUPPORTED = "not supported"  # the converter could not produce it; see "reason"
SKIPPED = "skipped"  # written, not checked (no runtime for it, e.g. SavedModel for TF Serving)
# A quantized variant (fp16, int8, int8_full) that runs but misses its PSNR bound: reported with
# its figure, not a failed export; runtimes refuse it unless explicitly allowed.
BELOW_BOUND = "below bound"

# (suffix, format, precision) of every artifact a path can produce, in the order written.
TFLITE_VARIANTS = (
    ("", "fp32"),
    ("_fp16", "fp16"),
    ("_int8", "int8"),
    ("_int8_full", "int8_full"),
)
RUNTIMES = {"tflite": "litert", "onnx": "onnxruntime", "keras": "keras", "savedmodel": "tf"}

# Every export format, in the order written: the trainer's --export_formats and export.main's
# --formats both take a comma list of these.
FORMATS = EXPORT_FORMATS
# What an export writes when no formats are given (onnx_int8 only on request).
DEFAULT_FORMATS = DEFAULT_EXPORT_FORMATS
_FORMAT_ALIASES = {"saved_model": "savedmodel", "tf_saved_model": "savedmodel", "lite": "tflite"}


def normalize_formats(formats):
    """A tuple of known formats from a comma string or a sequence ("none" and blanks dropped);
    ValueError names the unknown ones."""
    if isinstance(formats, str):
        formats = formats.split(",")
    out = []
    for f in formats or ():
        f = _FORMAT_ALIASES.get(f.strip().lower(), f.strip().lower())
        if not f or f == "none":
            continue
        if f not in FORMATS:
            raise ValueError(
                f"Unknown export format {f!r}: use a comma list of {', '.join(FORMATS)}."
            )
        if f not in out:
            out.append(f)
    return tuple(out)


def sample_prior(prior, shape, rng):
    """float32 samples of ``shape`` from a noise input's declared ``prior`` (numpy ``rng``)."""
    kind = prior["distribution"]
    if kind == "uniform":
        return rng.uniform(prior["low"], prior["high"], shape).astype("float32")
    if kind == "normal":
        return (prior["mean"] + prior["stddev"] * rng.standard_normal(shape)).astype("float32")
    raise ValueError(f"Unknown prior distribution {kind!r}: use uniform or normal.")


def artifact_file(path_name, fmt, precision="fp32"):
    """File (or directory) name of ``path_name``'s artifact in ``fmt``/``precision``."""
    if fmt == "tflite":
        suffix = dict((p, s) for s, p in TFLITE_VARIANTS)[precision]
        return f"{path_name}{suffix}.tflite"
    if fmt == "onnx":
        return f"{path_name}.onnx" if precision == "fp32" else f"{path_name}_{precision}.onnx"
    if fmt == "keras":
        return f"{path_name}.keras"
    if fmt == "savedmodel":
        return f"{path_name}_savedmodel"
    raise ValueError(f"Unknown export format {fmt!r}.")


def tensor_spec(name, shape, dtype="float32", kind=None, labels=None, value_range=None):
    """One input or output as stored in metadata.json, for a model file that came without
    metadata: the export stage writes its entries from each path's declaration instead. With
    no ``kind`` given, an NHWC tensor is an ``image`` and anything else a ``tensor`` (a model
    without metadata cannot say that a vector is a one-hot label or noise, nor its prior)."""
    shape = [
        None if d is None or not isinstance(d, numbers.Integral) or d < 0 else int(d) for d in shape
    ]
    kind = kind or ("image" if len(shape) == 4 else "tensor")
    spec = {"name": name, "kind": kind, "shape": shape, "dtype": str(dtype)}
    if kind == "image":
        spec["value_range"] = list(value_range or IMAGE_VALUE_RANGE)
    elif kind == "onehot":
        spec["value_range"] = [0.0, 1.0]
        spec["labels"] = list(labels) if labels else [str(i) for i in range(shape[-1] or 0)]
    return spec


def run_fields(method, step, checkpoint, image_size, domains, value_range=IMAGE_VALUE_RANGE):
    """The run-level fields every artifact entry repeats."""
    return {
        "method": method,
        "step": int(step) if step is not None else None,
        "checkpoint": checkpoint,
        "image_size": int(image_size),
        "domains": list(domains),
        "value_range": list(value_range),
    }


def new_metadata(run, paths):
    """Empty metadata for a run (``run_fields``) and its path infos ``{name: info}``."""
    return {"format_version": FORMAT_VERSION, **run, "paths": paths, "artifacts": []}


def merge_artifacts(old, new):
    """``old`` artifact entries updated by ``new`` ones (same file replaces), in file order."""
    by_file = {a["file"]: a for a in old}
    by_file.update({a["file"]: a for a in new})
    return sorted(by_file.values(), key=lambda a: (a.get("path", ""), a["file"]))


def write_metadata(export_dir, metadata):
    """Writes ``export_dir/metadata.json`` atomically (a reader never sees half a file)."""
    from trainer.io_utils import atomic_write_json

    return atomic_write_json(os.path.join(export_dir, METADATA_FILE), metadata)


def read_metadata(path):
    """Reads a metadata.json file, or the one inside a directory."""
    if os.path.isdir(path):
        path = os.path.join(path, METADATA_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{path} does not exist: export the model with `python -m export.main "
            "--model_dir=DIR`, which writes metadata.json beside the artifacts."
        )
    try:
        with open(path, "rb") as f:
            return parse_metadata(f.read(), path)
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-export the model.") from e


def parse_metadata(text, path=METADATA_FILE):
    """The metadata dict of a metadata.json's text; ValueError naming ``path`` otherwise."""
    try:
        meta = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}); re-export the model.") from e
    if not isinstance(meta, dict) or "artifacts" not in meta:
        raise ValueError(f"{path} is not an export metadata.json (it has no 'artifacts').")
    return meta


def find_artifact(metadata, file_name):
    """The artifact entry of ``file_name`` (a base name), or None."""
    base = os.path.basename(os.path.normpath(file_name))
    for artifact in metadata.get("artifacts", []):
        if artifact.get("file") == base:
            return artifact
    return None


def onnx_metadata_props(artifact):
    """String key/value pairs for an ONNX model's ``metadata_props``."""
    props = {
        ONNX_METADATA_KEY: json.dumps(artifact, sort_keys=True, default=str),
        "method": str(artifact.get("method", "")),
        "path": str(artifact.get("path", "")),
        "image_size": str(artifact.get("image_size", "")),
        "domains": ",".join(artifact.get("domains", [])),
        "value_range": json.dumps(artifact.get("value_range", list(IMAGE_VALUE_RANGE))),
        "step": str(artifact.get("step", "")),
    }
    return props
