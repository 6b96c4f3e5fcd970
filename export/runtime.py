"""Runs an exported translation path with ONNX Runtime or LiteRT only (no TensorFlow).

    from export.runtime import Translator

    t = Translator("runs/cyclegan/export/a2b.onnx")        # or a2b.tflite, a2b_int8.tflite ...
    out = t.translate("horse.jpg")                         # uint8 [S, S, 3]
    outs = t.translate(batch_uint8)                        # uint8 [N, S, S, 3]
    star = Translator("export/g.onnx").translate(img, target_domain="blond")  # two-input path
    pair = Translator("export/z.tflite").generate(4, seed=0)  # {"x_a": ..., "x_b": ...}

Pre-processing follows the artifact's ``metadata.json`` (written beside it by
``export.main``): images are resized with PIL to the model's size and scaled from [0, 255]
to the input's value range; image outputs are scaled back to uint8. Without a metadata.json
the metadata stored in an ONNX model's ``metadata_props`` is used, and failing that the
model's own input shapes with the [-1, 1] convention of every method here.

Returned values: a path with one output returns one uint8 array; a path with several
outputs (CoGAN's z -> (x_a, x_b)) returns ``{output name: array}`` in ``output_names``
order. A single HxWx3 image (or a file path) in gives HxWx3 out; a batch gives a batch.
"""

import json
import numbers
import os

import numpy as np

from export import metadata as metadata_lib

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


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


def _load_image_file(path, channels=3):
    from PIL import Image

    if not os.path.exists(path):
        raise FileNotFoundError(f"Image file {path} does not exist.")
    try:
        with Image.open(path) as im:
            if channels == 1:
                return np.asarray(im.convert("L"))[..., None]
            return np.asarray(im.convert("RGB"))
    except OSError as e:
        raise ValueError(f"{path} is not an image PIL can read ({e}).") from e


def _resize(image, size):
    from PIL import Image

    if image.shape[0] == size[0] and image.shape[1] == size[1]:
        return image
    if image.shape[-1] == 1:
        im = Image.fromarray(image[..., 0]).resize((size[1], size[0]), Image.BICUBIC)
        return np.asarray(im)[..., None]
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BICUBIC))


class Translator:
    """One exported translation path, run with the artifact's own runtime.

    Args:
      model_path: a ``.onnx`` or ``.tflite`` file written by ``export.main``.
      metadata: None (read ``metadata.json`` beside the model), a path to a metadata.json, or
        the dict of a whole metadata.json or of this artifact's entry.
      threads: CPU threads of the runtime (None = its default).

    Attributes: ``metadata`` (this artifact's entry), ``input_names``, ``output_names``,
    ``image_size`` (int, the square side in pixels), ``domains`` (domain names of the run),
    ``target_domains`` (labels of a one-hot target-domain input; empty when there is none),
    ``format`` ("onnx" or "tflite").
    """

    def __init__(self, model_path, metadata=None, threads=None):
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
        self.metadata = self._find_metadata(model_path, metadata)
        self._inputs = self._specs("inputs", self._backend.input_names)
        self._outputs = self._specs("outputs", self._backend.output_names)
        # Shapes read from the model fill in what a missing metadata.json would have said.
        self.metadata = {**self.metadata, "inputs": self._inputs, "outputs": self._outputs}
        self.input_names = [s["name"] for s in self._inputs]
        self.output_names = [s["name"] for s in self._outputs]
        images = [s for s in self._inputs if s["kind"] == "image"]
        self._image_input = images[0] if images else None
        self._onehot = [s for s in self._inputs if s["kind"] == "onehot"]
        self._noise = [s for s in self._inputs if s["kind"] == "noise"]
        size = self.metadata.get("image_size")
        if size is None and self._image_input is not None:
            size = self._image_input["shape"][1]
        self.image_size = int(size) if size else None
        self.domains = list(self.metadata.get("domains", []))
        self.target_domains = list(self._onehot[0]["labels"]) if self._onehot else []

    # -- metadata ------------------------------------------------------------------------
    def _find_metadata(self, model_path, metadata):
        if isinstance(metadata, (str, os.PathLike)):
            metadata = metadata_lib.read_metadata(os.fspath(metadata))
        if metadata is None:
            beside = os.path.join(os.path.dirname(model_path), metadata_lib.METADATA_FILE)
            if os.path.exists(beside):
                metadata = metadata_lib.read_metadata(beside)
        if isinstance(metadata, dict) and "artifacts" in metadata:
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
    def _image_batch(self, images):
        spec = self._image_input
        channels = spec["shape"][-1] or 3
        single = False
        if isinstance(images, (str, os.PathLike)):
            images, single = _load_image_file(os.fspath(images), channels), True
        elif isinstance(images, (list, tuple)):
            loaded = [
                _load_image_file(os.fspath(i), channels) if isinstance(i, (str, os.PathLike)) else i
                for i in images
            ]
            images = [np.asarray(i) for i in loaded]
        elif hasattr(images, "convert") and hasattr(images, "size"):  # a PIL image
            gray = channels == 1
            image = np.asarray(images.convert("L" if gray else "RGB"))
            images, single = (image[..., None] if gray else image), True
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
            out.append(_resize(image, (self.image_size, self.image_size)))
        batch = np.stack(out).astype(np.float32)
        lo, hi = spec.get("value_range", metadata_lib.IMAGE_VALUE_RANGE)
        return batch / 255.0 * (hi - lo) + lo, single

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
            if target_domain not in labels:
                raise ValueError(
                    f"Unknown target_domain {target_domain!r}: choose one of {', '.join(labels)}."
                )
            index = labels.index(target_domain)
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
            if spec["kind"] == "onehot":
                feeds[spec["name"]] = self._onehot_feed(spec, target_domain, n)
            elif spec["kind"] in ("noise", "tensor"):
                shape = [n] + [d or 1 for d in spec["shape"][1:]]
                feeds[spec["name"]] = rng.standard_normal(shape).astype(np.float32)
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
                lo, hi = spec.get("value_range", metadata_lib.IMAGE_VALUE_RANGE)
                y = np.clip(np.round((y - lo) / (hi - lo) * 255.0), 0, 255).astype(np.uint8)
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

    def translate(self, images, target_domain=None, seed=0):
        """Translates uint8 images (an array HxWx3 / NxHxWx3, a file path, a PIL image or a
        list of those) and returns uint8 images at the model's size (see the module doc).

        ``target_domain``: for paths with a one-hot domain input, a name from
        ``target_domains``, an index, or a vector. ``seed`` draws the noise inputs a path may
        have besides the image.
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
