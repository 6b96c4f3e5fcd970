"""Runs an exported translation path with ONNX Runtime or LiteRT only (no TensorFlow).

    from export.runtime import Translator

    t = Translator("runs/cyclegan/export/a2b.onnx")        # or a2b.tflite, a2b_int8.tflite ...
    out = t.translate("horse.jpg")                         # uint8 [S, S, 3]
    outs = t.translate(batch_uint8)                        # uint8 [N, S, S, 3]
    star = Translator("export/g.onnx").translate(img, target_domain="blond")  # two-input path
    pair = Translator("export/z.tflite").generate(4, seed=0)  # {"x_a": ..., "x_b": ...}

Pre-processing is the project's one preprocessing (``trainer.imaging``, also used for
training): decode (decompression bombs refused from the header), shorter side resized to the
model's size with antialiased bicubic filtering, centre square cropped, uint8 scaled to the
input's value range; image outputs are scaled back to uint8. Noise inputs are drawn from the
prior the path declares (``metadata.json``'s ``prior``), never outside it.

The model's description comes from the ``metadata.json`` beside it (written by
``export.main``); without one, from the metadata stored in an ONNX model's ``metadata_props``,
and failing that from the model's own input shapes with the [-1, 1] convention of every
method here. An artifact marked ``below bound`` (a quantized variant that missed its PSNR
bound) or ``failed`` is refused unless ``allow_below_bound=True``; ``choose_artifact`` picks
the default variant of a path among those within their bounds.

Returned values: a path with one output returns one uint8 array; a path with several
outputs (CoGAN's z -> (x_a, x_b)) returns ``{output name: array}`` in ``output_names``
order. A single HxWx3 image (or a file path) in gives HxWx3 out; a batch gives a batch.
"""

import json
import numbers
import os
import re

import numpy as np

from export import metadata as metadata_lib
from trainer import imaging

IMAGE_EXTS = imaging.EXTENSIONS


class _OnnxBackend:
    def __init__(self, path, threads):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                path, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as e:  # onnxruntime raises its own non-ValueError types
            raise ValueError(
                f"{path} is not a loadable ONNX model ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:200]}). The file is corrupt or truncated: "
                "export it again with `python -m export.main --model_dir=DIR`."
            ) from e
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_shapes = {i.name: list(i.shape) for i in self.session.get_inputs()}
        self.dynamic_batch = True

    def stored_metadata(self):
        props = self.session.get_modelmeta().custom_metadata_map
        text = props.get(metadata_lib.ONNX_METADATA_KEY)
        return json.loads(text) if text else None

    def run(self, feeds):
        outs = self.session.run(self.output_names, feeds)
        return dict(zip(self.output_names, outs))


class _LiteRTBackend:
    def __init__(self, path, threads):
        from ai_edge_litert.interpreter import Interpreter

        try:
            self.interpreter = Interpreter(model_path=path, num_threads=threads)
            signatures = self.interpreter.get_signature_list()
        except (ValueError, RuntimeError) as e:
            raise ValueError(
                f"{path} is not a loadable TFLite model ({str(e).splitlines()[0][:200]}). The "
                "file is corrupt or truncated: export it again with "
                "`python -m export.main --model_dir=DIR`."
            ) from e
        if len(signatures) != 1:
            raise ValueError(
                f"{path} has {len(signatures)} signatures ({', '.join(signatures)}); the "
                "Translator runs models written by export.main, which have exactly one."
            )
        self.runner = self.interpreter.get_signature_runner(next(iter(signatures)))
        self.inputs = self.runner.get_input_details()
        self.outputs = self.runner.get_output_details()
        self.input_names = list(self.inputs)
        self.output_names = list(self.outputs)
        self.input_shapes = {k: list(v["shape_signature"]) for k, v in self.inputs.items()}
        self.dynamic_batch = all(int(v["shape_signature"][0]) == -1 for v in self.inputs.values())

    def stored_metadata(self):
        return None

    @staticmethod
    def _quantize(x, detail):
        scale, zero = detail["quantization"]
        if not np.issubdtype(detail["dtype"], np.integer) or not scale:
            return x.astype(detail["dtype"])
        info = np.iinfo(detail["dtype"])
        return np.clip(np.round(x / scale + zero), info.min, info.max).astype(detail["dtype"])

    @staticmethod
    def _dequantize(y, detail):
        scale, zero = detail["quantization"]
        if not np.issubdtype(y.dtype, np.integer) or not scale:
            return y
        return ((y.astype(np.float32) - zero) * scale).astype(np.float32)

    def _run_once(self, feeds):
        feeds = {k: self._quantize(v, self.inputs[k]) for k, v in feeds.items()}
        outs = self.runner(**feeds)
        # The runner returns views of interpreter buffers: copy before the next call.
        return {k: np.array(self._dequantize(outs[k], self.outputs[k])) for k in self.outputs}

    def run(self, feeds):
        n = len(next(iter(feeds.values())))
        if self.dynamic_batch or n == 1:
            return self._run_once(feeds)
        parts = [self._run_once({k: v[i : i + 1] for k, v in feeds.items()}) for i in range(n)]
        return {k: np.concatenate([p[k] for p in parts]) for k in self.output_names}


_PRIOR_TEXT = re.compile(r"^\s*(uniform|normal)\s*\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)\s*$")
# Which variant of a path runs by default where several are within their parity bounds and
# the export did not time them (metadata written before ``latency`` was recorded), per runtime,
# in the order bench/export_latency.py measured at 128 px on CPUs (XNNPACK for LiteRT, the MLAS
# kernels for ONNX Runtime). Timed variants rank by their measured latency instead: the order
# changes with the CPU (int8 is 6x faster than fp32 with AVX512-VNNI, no faster without it).
VARIANT_PREFERENCE = {
    "tflite": ("int8_full", "int8", "fp32", "fp16"),
    "onnx": ("int8", "fp32"),
}
_REFUSED = (metadata_lib.BELOW_BOUND, metadata_lib.FAILED)


def noise_prior(spec):
    """The declared prior of a noise input (``spec["prior"]``), or the one its
    ``distribution`` text names (metadata written before priors were stored); N(0, 1) when the
    entry says nothing."""
    if isinstance(spec.get("prior"), dict):
        return spec["prior"]
    match = _PRIOR_TEXT.match(str(spec.get("distribution", "")))
    if match:
        kind, a, b = match.group(1), float(match.group(2)), float(match.group(3))
        if kind == "uniform":
            return {"distribution": "uniform", "low": a, "high": b}
        return {"distribution": "normal", "mean": a, "stddev": b}
    return {"distribution": "normal", "mean": 0.0, "stddev": 1.0}


def _figure(value, bound, digits=2):
    """``value`` with enough digits to show which side of ``bound`` it is on (24.995 vs 25
    prints as 24.995, never 25.00)."""
    for d in range(digits, 7):
        text = f"{value:.{d}f}"
        if (float(text) < bound) == (value < bound):
            return text
    return repr(float(value))


def parity_text(artifact):
    """``"PSNR 23.71 dB on 64 test images, bound >= 25 dB"`` (or max|err|) from an artifact's
    parity record; "" when it has none."""
    parity = artifact.get("parity") or {}
    bound = parity.get("bound") or {}
    judged = parity.get("judged_on") or [k for k in ("test_images", "random") if k in parity]
    judged = [s for s in judged if isinstance(parity.get(s), dict)]
    if not judged:
        return artifact.get("error", "")
    where = judged[0]
    n = parity[where].get("examples")
    on = f" on {n} {'test images' if where == 'test_images' else 'random inputs'}" if n else ""
    if "max_abs" in bound:
        worst = max(parity[s].get("max_abs", 0.0) for s in judged)
        return f"max|err| {worst:.2e}{on}, bound <= {bound['max_abs']:g}"
    if "psnr" in bound:
        worst = min(parity[s].get("psnr", 0.0) for s in judged)
        return f"PSNR {_figure(worst, bound['psnr'])} dB{on}, bound >= {bound['psnr']:g} dB"
    return ""


def usable(artifact):
    """True for an artifact a runtime loads without an override (status ok or unchecked)."""
    return artifact.get("status", metadata_lib.OK) not in _REFUSED + (metadata_lib.NOT_SUPPORTED,)


def check_status(
    artifact, file_name, allow_below_bound=False, override="allow_below_bound=True", siblings=()
):
    """Refuses an artifact marked below its bound or failed, naming the figure and the bound,
    unless ``allow_below_bound``."""
    status = artifact.get("status")
    if status not in _REFUSED or allow_below_bound:
        return
    figure = parity_text(artifact)
    others = [a["file"] for a in siblings if usable(a) and a.get("file") != file_name]
    raise ValueError(
        f"{file_name} is marked {status!r} in metadata.json"
        + (f" ({figure})" if figure else "")
        + ": its outputs differ from the trained model by more than its bound. "
        + (f"Use a variant within its bound ({', '.join(others)}) or pass " if others else "Pass ")
        + f"{override} to load it anyway."
    )


def latency_ms(artifact):
    """The single-example median latency the export measured for ``artifact``, or None."""
    value = (artifact.get("latency") or {}).get("median_ms")
    return float(value) if isinstance(value, (int, float)) else None


def _artifacts_of_path(metadata, path, formats):
    """``(path, [its artifacts among formats])``; ``path`` None = the first path. Raises
    ValueError naming the paths the export has when it has no such path."""
    artifacts = [a for a in metadata.get("artifacts", []) if a.get("format") in formats]
    names = sorted({a.get("path") for a in artifacts if a.get("path")})
    if path is None and names:
        path = names[0]
    if path not in names:
        raise ValueError(
            f"The export has no {'/'.join(formats)} artifact of path {path!r}; its paths are "
            f"{', '.join(names) or 'none'}."
        )
    return path, [a for a in artifacts if a.get("path") == path]


def ranked_variants(metadata, path=None, formats=("tflite",)):
    """The artifacts of ``path`` (or of the first path) among ``formats`` within their bound,
    the default first: formats in the order given, within each the fastest the export measured
    (its ``latency``), or ``VARIANT_PREFERENCE[format]``'s order when they were not all timed.
    Raises ValueError naming what exists when none qualifies."""
    path, of_path = _artifacts_of_path(metadata, path, formats)
    usable_ones = [a for a in of_path if usable(a)]
    # A format's variants rank by measured latency only when every one of them was timed.
    timed = {
        f
        for f in formats
        if all(latency_ms(a) is not None for a in usable_ones if a.get("format") == f)
    }

    def rank(a):
        order = VARIANT_PREFERENCE.get(a.get("format"), ())
        p = a.get("precision", "fp32")
        static = order.index(p) if p in order else len(order)
        measured = latency_ms(a) if a.get("format") in timed else None
        return (formats.index(a.get("format")), static if measured is None else measured, static)

    candidates = sorted(usable_ones, key=rank)
    if not candidates:
        listed = ", ".join(f"{a['file']} ({a.get('status')})" for a in of_path)
        raise ValueError(
            f"No {'/'.join(formats)} artifact of path {path!r} is within its parity bound "
            f"({listed}); name one explicitly with the below-bound override to use it anyway."
        )
    return candidates


def choose_artifact(metadata, path=None, formats=("tflite",), precision=None):
    """The artifact of ``path`` (or of the first path) among ``formats`` that a runtime loads by
    default: the first of ``ranked_variants``. With ``precision`` ("fp32", "int8" ...), that
    variant whatever its status (loading it still refuses a below-bound one). Raises ValueError
    naming what exists when none qualifies."""
    if precision is None:
        return ranked_variants(metadata, path, formats)[0]
    path, of_path = _artifacts_of_path(metadata, path, formats)
    for a in of_path:
        if a.get("precision", "fp32") == precision:
            return a
    have = sorted({a.get("precision", "fp32") for a in of_path})
    raise ValueError(
        f"The export has no {precision} {'/'.join(formats)} artifact of path {path!r}; it "
        f"has {', '.join(have)} (export the missing one with python -m export.main "
        "--model_dir=DIR --formats=...)."
    )


# CPU flags of int8 dot-product instructions: with them int8 convolutions run several times
# faster than float, without them no faster (x86: AVX512-VNNI / AVX-VNNI / AMX; ARM: asimddp).
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")


def cpu_description(cpuinfo="/proc/cpuinfo"):
    """``"<model name>, int8 dot product: <flags or none>"`` from ``cpuinfo`` (Linux; the
    platform's processor name elsewhere): which variant is fastest depends on it."""
    import platform

    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open(cpuinfo) as f:
            for line in f:
                key, _, value = line.partition(":")
                key = key.strip().lower()
                if key in ("model name", "hardware") and value.strip():
                    name = value.strip()
                elif key in ("flags", "features"):
                    flags |= set(value.split())
    except OSError:
        pass
    dot = [f for f in INT8_DOT_FLAGS if f in flags]
    return f"{name}, int8 dot product: {'/'.join(dot) if dot else 'none'}"


def fastest_here(export_dir, path=None, formats=("tflite",), threads=None, metadata=None, log=None):
    """``(artifact, {file: median ms})``: of ``path``'s variants within their bound, the one
    fastest on this machine, each timed on one input after a warm-up (``export.verify.latency``).

    Which variant is fastest depends on the CPU more than on the model: on x86 without
    AVX512-VNNI (and on ARM without the dot-product instructions) int8 convolutions run no
    faster than float, with them several times faster. So the runtime that serves the model
    measures where it runs, as the browser page does; the export's own figures (``latency``)
    describe the machine that exported it. One candidate: no timing, an empty dict. A variant
    that cannot be loaded (a damaged file) is left out and named to ``log``; ValueError when
    none can.
    """
    from export import verify  # numpy only; no TensorFlow

    meta = metadata if metadata is not None else metadata_lib.read_metadata(export_dir)
    candidates = ranked_variants(meta, path, formats)
    if len(candidates) < 2:
        return candidates[0], {}
    times, errors = {}, []
    for a in candidates:
        try:
            translator = Translator(
                os.path.join(export_dir, a["file"]), metadata=a, threads=threads
            )
            feeds = verify.make_feeds(a["inputs"], n=1, seed=0)
            times[a["file"]] = verify.latency(translator.run, feeds, threads)["median_ms"]
        except (ValueError, OSError, RuntimeError) as e:  # one damaged file spares the others
            errors.append(f"{a['file']}: {e}")
    if errors and log is not None:
        log("left out, could not be run: " + "; ".join(errors))
    if not times:
        raise ValueError(
            f"No variant of path {candidates[0]['path']!r} could be run: {'; '.join(errors)}"
        )
    # Equal times: the earlier in the default order (min keeps the first of equals).
    best = min((a for a in candidates if a["file"] in times), key=lambda a: times[a["file"]])
    return best, times


def resolve_model(
    model_path,
    path=None,
    formats=("tflite", "onnx"),
    precision=None,
    measure=False,
    threads=None,
    log=None,
):
    """``model_path`` itself when it is a file; for an export directory, the file of
    ``choose_artifact`` (the default variant of ``path``, or the ``precision`` asked for), or
    with ``measure`` and no ``precision`` the variant fastest here (``fastest_here`` with
    ``threads``; ``log`` receives one line with the figures)."""
    model_path = os.fspath(model_path)
    if not os.path.isdir(model_path):
        if precision is not None or path is not None:
            raise ValueError(
                f"{model_path} is a model file: --path and --precision choose among the files "
                "of an export directory; pass DIR/export to use them."
            )
        return model_path
    meta = metadata_lib.read_metadata(model_path)
    if measure and precision is None:
        chosen, times = fastest_here(model_path, path, formats, threads, meta, log)
        if times and log is not None:
            figures = ", ".join(
                f"{f} {ms:.3g} ms" for f, ms in sorted(times.items(), key=lambda t: t[1])
            )
            log(
                f"{chosen['path']}: {figures} (one input, timed here); running {chosen['file']} "
                "(--precision skips the timing)"
            )
        return os.path.join(model_path, chosen["file"])
    return os.path.join(model_path, choose_artifact(meta, path, formats, precision)["file"])


def _is_source(x):
    """A file path, encoded bytes or a PIL image (anything but a pixel array)."""
    if isinstance(x, (str, os.PathLike, bytes, bytearray, memoryview)):
        return True
    return hasattr(x, "convert") and hasattr(x, "getbands")


class Translator:
    """One exported translation path, run with the artifact's own runtime.

    Args:
      model_path: a ``.onnx`` or ``.tflite`` file written by ``export.main``.
      metadata: None (read ``metadata.json`` beside the model), a path to a metadata.json, or
        the dict of a whole metadata.json or of this artifact's entry.
      threads: CPU threads of the runtime (None = its default).
      allow_below_bound: load an artifact that metadata.json marks ``below bound`` or
        ``failed`` (refused by default, with its parity figure and bound in the message).
      max_pixels: largest picture (width x height) decoded from a file or bytes.

    Attributes: ``metadata`` (this artifact's entry), ``input_names``, ``output_names``,
    ``image_size`` (int, the square side in pixels), ``domains`` (domain names of the run),
    ``target_domains`` (labels of a one-hot target-domain input; empty when there is none),
    ``format`` ("onnx" or "tflite"), ``channels`` (of the image input), ``status`` (the artifact's status, None when unknown).
    """

    def __init__(
        self,
        model_path,
        metadata=None,
        threads=None,
        allow_below_bound=False,
        max_pixels=imaging.MAX_PIXELS,
    ):
        model_path = os.fspath(model_path)
        if not os.path.isfile(model_path):
            raise FileNotFoundError(
                f"Model file {model_path} does not exist: pass a .onnx or .tflite file from an "
                "export directory (`python -m export.main --model_dir=DIR` writes DIR/export/)."
            )
        ext = os.path.splitext(model_path)[1].lower()
        if ext == ".onnx":
            self.format = "onnx"
            self._backend = _OnnxBackend(model_path, threads)
        elif ext == ".tflite":
            self.format = "tflite"
            self._backend = _LiteRTBackend(model_path, threads)
        else:
            raise ValueError(
                f"{model_path}: the Translator runs .onnx and .tflite files, not {ext or 'a file'}"
                " without extension (load .keras files with keras.saving.load_model)."
            )
        self.model_path = model_path
        self.max_pixels = max_pixels
        self.metadata = self._find_metadata(model_path, metadata, allow_below_bound)
        self.status = self.metadata.get("status")
        self._check_against_model()
        self._inputs = self._specs("inputs", self._backend.input_names)
        self._outputs = self._specs("outputs", self._backend.output_names)
        # Shapes read from the model fill in what a missing metadata.json would have said.
        self.metadata = {**self.metadata, "inputs": self._inputs, "outputs": self._outputs}
        self.input_names = [s["name"] for s in self._inputs]
        self.output_names = [s["name"] for s in self._outputs]
        images = [s for s in self._inputs if s["kind"] == "image"]
        self._image_input = images[0] if images else None
        self.channels = (self._image_input["shape"][-1] or 3) if self._image_input else None
        self._onehot = [s for s in self._inputs if s["kind"] == "onehot"]
        self._noise = [s for s in self._inputs if s["kind"] == "noise"]
        size = self.metadata.get("image_size")
        if size is None and self._image_input is not None:
            size = self._image_input["shape"][1]
        self.image_size = int(size) if size else None
        self.domains = list(self.metadata.get("domains", []))
        self.target_domains = list(self._onehot[0]["labels"]) if self._onehot else []

    # -- metadata ------------------------------------------------------------------------
    def _find_metadata(self, model_path, metadata, allow_below_bound):
        entry = self._metadata_entry(model_path, metadata)
        siblings = self._whole.get("artifacts", []) if self._whole else ()
        check_status(entry, os.path.basename(model_path), allow_below_bound, siblings=siblings)
        return entry

    def _metadata_entry(self, model_path, metadata):
        self._whole = None
        if isinstance(metadata, (str, os.PathLike)):
            metadata = metadata_lib.read_metadata(os.fspath(metadata))
        if metadata is None:
            beside = os.path.join(os.path.dirname(model_path), metadata_lib.METADATA_FILE)
            if os.path.exists(beside):
                metadata = metadata_lib.read_metadata(beside)
        if isinstance(metadata, dict) and "artifacts" in metadata:
            self._whole = metadata
            entry = metadata_lib.find_artifact(metadata, model_path)
            if entry is None:
                files = ", ".join(a.get("file", "?") for a in metadata["artifacts"])
                raise ValueError(
                    f"The metadata for {model_path} has no entry for "
                    f"{os.path.basename(model_path)} (it lists {files}): pass the metadata.json "
                    "of the export that wrote this file."
                )
            return entry
        if isinstance(metadata, dict):
            return metadata
        stored = self._backend.stored_metadata()
        if stored:
            return stored
        return {}  # shapes from the model itself, values in [-1, 1]

    def _check_against_model(self):
        """Refuses metadata whose inputs are not the model's (names, fixed dimensions)."""
        declared = self.metadata.get("inputs")
        if not declared:
            return
        actual = self._backend.input_shapes

        def dims(shape):
            return [d if isinstance(d, numbers.Integral) and d > 0 else None for d in shape]

        problems = []
        names = [s.get("name") for s in declared]
        if sorted(names) != sorted(actual):
            problems.append(f"it lists inputs {names}, the model has {list(actual)}")
        else:
            for spec in declared:
                want, got = dims(spec.get("shape") or []), dims(actual[spec["name"]])
                clash = len(want) != len(got) or any(
                    w is not None and g is not None and w != g for w, g in zip(want, got)
                )
                if clash:
                    problems.append(f"input {spec['name']!r} is {want} there, {got} in the model")
        if problems:
            raise ValueError(
                f"The metadata for {os.path.basename(self.model_path)} does not describe this "
                f"model: {'; '.join(problems)}. Use the metadata.json written with this file "
                "(export again with `python -m export.main --model_dir=DIR`)."
            )

    def _specs(self, key, runtime_names):
        stored = {s["name"]: s for s in self.metadata.get(key, [])}
        labels = self.metadata.get("path_domains") or self.metadata.get("domains")
        specs = []
        for name in runtime_names:
            if name in stored:
                specs.append(stored[name])
            else:
                shape = self._backend.input_shapes.get(name, [None, None, None, 3])
                shape = [
                    int(d) if isinstance(d, numbers.Integral) and d > 0 else None for d in shape
                ]
                specs.append(metadata_lib.tensor_spec(name, shape, labels=labels))
        return specs

    # -- inputs ----------------------------------------------------------------------------
    def _load(self, source, channels):
        """A file path, bytes or PIL image -> uint8 [S, S, C] by the one preprocessing."""
        if isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
            if isinstance(source, (str, os.PathLike)) and not os.path.exists(source):
                raise FileNotFoundError(f"Image file {os.fspath(source)} does not exist.")
            return imaging.load(source, self.image_size, channels, max_pixels=self.max_pixels)
        # A PIL image: the same colour conversion as a decoded file, then the same fit.
        return imaging.fit(imaging._normalize_mode(source, channels), self.image_size)

    def _image_batch(self, images):
        spec = self._image_input
        channels = spec["shape"][-1] or 3
        single = False
        if _is_source(images):
            images, single = [self._load(images, channels)], True
        elif isinstance(images, (list, tuple)):
            images = [self._load(i, channels) if _is_source(i) else np.asarray(i) for i in images]
        if isinstance(images, np.ndarray):
            if images.ndim == 3:
                images, single = images[None], True
            elif images.ndim != 4:
                raise ValueError(
                    f"Expected a uint8 image [H, W, {channels}] or a batch [N, H, W, "
                    f"{channels}], got an array of shape {images.shape}"
                    + (" (a grayscale image? stack it to 3 channels)" if images.ndim == 2 else "")
                    + "."
                )
            images = list(images)
        if not images:
            raise ValueError("No images to translate (got an empty batch).")
        out = []
        for i, image in enumerate(images):
            image = np.asarray(image)
            if image.dtype != np.uint8:
                raise ValueError(
                    f"Expected uint8 images with values 0..255, got dtype {image.dtype} "
                    f"(image {i}): convert with np.clip(x * 255, 0, 255).astype(np.uint8) for "
                    "floats in [0, 1]."
                )
            if image.ndim != 3 or image.shape[-1] != channels:
                raise ValueError(
                    f"Expected images of shape [H, W, {channels}] ({channels} channels), got "
                    f"{image.shape} (image {i})"
                    + (
                        ": drop the alpha channel"
                        if image.ndim == 3 and image.shape[-1] == 4
                        else ""
                    )
                    + "."
                )
            if min(image.shape[:2]) < 1:
                raise ValueError(f"Image {i} is empty (shape {image.shape}).")
            out.append(imaging.fit(image, self.image_size))
        value_range = spec.get("value_range", metadata_lib.IMAGE_VALUE_RANGE)
        return imaging.to_float(np.stack(out), value_range), single

    @staticmethod
    def _label_index(spec, name):
        """Index of label ``name`` (or ``"GROUP/NAME"``) in a one-hot input's labels."""
        labels = list(spec["labels"])
        groups = spec.get("groups") or []
        if not groups:
            if name not in labels:
                raise ValueError(
                    f"Unknown target_domain {name!r}: choose one of {', '.join(labels)}."
                )
            return labels.index(name)
        # Groups split the labels in order (StarGAN's mask vector: one group per dataset).
        flat = sum(len(g["labels"]) for g in groups) == len(labels)
        hits, names, at = {}, [], 0
        for g in groups:
            for j, label in enumerate(g["labels"]):
                index = at + j if flat else labels.index(label)
                names.append(f"{g['name']}/{label}")
                hits.setdefault(label, []).append((g["name"], index))
                hits.setdefault(names[-1], []).append((g["name"], index))
            at += len(g["labels"])
        found = hits.get(name, [])
        if len(found) > 1:
            raise ValueError(
                f"target_domain {name!r} is a label of several groups "
                f"({', '.join(h[0] for h in found)}): write it as GROUP/NAME, one of "
                f"{', '.join(names)}."
            )
        if not found:
            raise ValueError(f"Unknown target_domain {name!r}: choose one of {', '.join(names)}.")
        return found[0][1]

    def _onehot_feed(self, spec, target_domain, n):
        labels = list(spec["labels"])
        if target_domain is None:
            raise ValueError(
                f"This path needs target_domain= (its input {spec['name']!r} selects one of: "
                f"{', '.join(labels)})."
            )
        if isinstance(target_domain, (int, np.integer)) and not isinstance(target_domain, bool):
            index = int(target_domain)
            if not 0 <= index < len(labels):
                raise ValueError(f"target_domain={index} is out of range 0..{len(labels) - 1}.")
        elif isinstance(target_domain, str):
            index = self._label_index(spec, target_domain)
        else:
            vector = np.asarray(target_domain, dtype=np.float32)
            if vector.shape[-1] != len(labels) or vector.ndim not in (1, 2):
                raise ValueError(
                    f"target_domain as a vector must have {len(labels)} entries "
                    f"({', '.join(labels)}), got shape {vector.shape}."
                )
            return np.broadcast_to(vector.reshape(-1, len(labels)), (n, len(labels))).copy()
        return np.repeat(np.eye(len(labels), dtype=np.float32)[index : index + 1], n, axis=0)

    def _other_feeds(self, n, target_domain, rng):
        feeds = {}
        for spec in self._inputs:
            shape = [n] + [d or 1 for d in spec["shape"][1:]]
            if spec["kind"] == "onehot":
                feeds[spec["name"]] = self._onehot_feed(spec, target_domain, n)
            elif spec["kind"] == "noise":
                feeds[spec["name"]] = metadata_lib.sample_prior(noise_prior(spec), shape, rng)
            elif spec["kind"] != "image":
                raise ValueError(
                    f"Input {spec['name']!r} of {os.path.basename(self.model_path)} is of kind "
                    f"{spec['kind']!r}, which the Translator cannot make up: feed it with "
                    ".run({name: array})."
                )
        if target_domain is not None and not self._onehot:
            raise ValueError(
                f"{os.path.basename(self.model_path)} has no target-domain input; call it "
                "without target_domain=."
            )
        return feeds

    # -- outputs ---------------------------------------------------------------------------
    def _postprocess(self, outs, single):
        result = {}
        for spec in self._outputs:
            y = np.asarray(outs[spec["name"]])
            if spec["kind"] == "image":
                y = imaging.to_uint8(y, spec.get("value_range", metadata_lib.IMAGE_VALUE_RANGE))
            result[spec["name"]] = y[0] if single else y
        if len(result) == 1:
            return next(iter(result.values()))
        return result

    # -- public ----------------------------------------------------------------------------
    def run(self, feeds):
        """Raw call: ``{input name: float array}`` -> ``{output name: array}``, no scaling."""
        missing = [n for n in self.input_names if n not in feeds]
        extra = [n for n in feeds if n not in self.input_names]
        if missing or extra:
            raise ValueError(
                f"Inputs of {os.path.basename(self.model_path)} are {', '.join(self.input_names)}"
                f"; missing {missing or 'none'}, unknown {extra or 'none'}."
            )
        feeds = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in feeds.items()}
        return self._backend.run(feeds)

    def preprocess(self, images):
        """The float batch the image input is fed for ``images`` (anything ``translate``
        takes): the one preprocessing of ``trainer.imaging``, scaled to the value range."""
        if self._image_input is None:
            raise ValueError(f"{os.path.basename(self.model_path)} takes no image input.")
        return self._image_batch(images)[0]

    def translate(self, images, target_domain=None, seed=0):
        """Translates uint8 images (an array HxWx3 / NxHxWx3, a file path, a PIL image or a
        list of those; encoded bytes too) and returns uint8 images at the model's size (see
        the module doc).

        ``target_domain``: for paths with a one-hot domain input, a name from
        ``target_domains`` (``GROUP/NAME`` where the labels are grouped and a name repeats),
        an index, or a vector. ``seed`` draws the noise inputs a path may have besides the
        image, from their declared priors.
        """
        if self._image_input is None:
            raise ValueError(
                f"{os.path.basename(self.model_path)} generates from noise (inputs "
                f"{', '.join(self.input_names)}) and takes no image: use .generate(n)."
            )
        batch, single = self._image_batch(images)
        rng = np.random.default_rng(seed)
        feeds = {self._image_input["name"]: batch}
        feeds.update(self._other_feeds(len(batch), target_domain, rng))
        return self._postprocess(self.run(feeds), single)

    def generate(self, n=1, seed=None, target_domain=None):
        """Samples ``n`` outputs of a noise-input path (GAN, cGAN, CoGAN), as uint8."""
        if self._image_input is not None:
            raise ValueError(
                f"{os.path.basename(self.model_path)} translates images: use .translate(images)."
            )
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}.")
        rng = np.random.default_rng(seed)
        return self._postprocess(self.run(self._other_feeds(n, target_domain, rng)), False)

    def __repr__(self):
        return (
            f"Translator({self.model_path!r}, format={self.format}, "
            f"path={self.metadata.get('path')}, inputs={self.input_names}, "
            f"outputs={self.output_names}, image_size={self.image_size})"
        )
