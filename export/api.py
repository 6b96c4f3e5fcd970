"""Export a trained model_dir: translation paths -> formats -> parity -> metadata.json.

    from export.api import export_model_dir
    result = export_model_dir("runs/cyclegan", formats=("tflite", "onnx"))
    print("\\n".join(result["headline"]))

``export_paths`` does the same for any ``{name: keras.Model}`` (no model_dir needed), which is
what the tests and new methods use to check their ``translation_paths()``.
"""

import os
import shutil
import tempfile
import time

import numpy as np
from absl import logging

from export import graph, onnx_quant, tflite, verify
from export import metadata as metadata_lib
from export import onnx as onnx_lib

FORMATS = ("tflite", "onnx", "keras", "savedmodel", "onnx_int8")
DEFAULT_FORMATS = FORMATS[:4]  # onnx_int8 (static int8 for services) on request
_ALIASES = {"saved_model": "savedmodel", "tf_saved_model": "savedmodel", "lite": "tflite"}
TEST_EXAMPLES = 8
RANDOM_EXAMPLES = 4
CALIBRATION_EXAMPLES = 32


def normalize_formats(formats):
    """A tuple of known formats from a comma string or a sequence; ValueError names the rest."""
    if isinstance(formats, str):
        formats = formats.split(",")
    out = []
    for f in formats or ():
        f = _ALIASES.get(f.strip().lower(), f.strip().lower())
        if not f or f == "none":
            continue
        if f not in FORMATS:
            raise ValueError(
                f"Unknown export format {f!r}: use a comma list of {', '.join(FORMATS)}."
            )
        if f not in out:
            out.append(f)
    return tuple(out)


# -- images for parity and calibration ---------------------------------------------------------


def load_images(config, domain, split, limit):
    """uint8 images of ``domain`` from the run's data, or None (with the reason logged)."""
    if config is None or not domain:
        return None
    try:
        from trainer import data as data_lib

        d = config.data
        images, _ = data_lib.load_arrays(
            d.dataset, domain, split, data_dir=d.data_dir, image_size=d.image_size, limit=limit
        )
    except Exception as e:  # no data here is not a reason to refuse an export
        logging.warning(
            "No %s images of %s for export checks (%s); using random inputs.", split, domain, e
        )
        return None
    images = np.asarray(images)
    return images if len(images) else None


def _to_float(images_uint8, spec):
    lo, hi = spec.get("value_range", metadata_lib.IMAGE_VALUE_RANGE)
    return np.asarray(images_uint8, np.float32) / 255.0 * (hi - lo) + lo


def _image_spec(inputs):
    return next((s for s in inputs if s["kind"] == "image"), None)


def _fit_images(images, spec):
    """``images`` if they match the image input (size, channels), else None."""
    if images is None or spec is None:
        return None
    if tuple(images.shape[1:]) != tuple(spec["shape"][1:]):
        logging.warning(
            "Data images %s do not fit input %s %s; using random inputs.",
            images.shape[1:],
            spec["name"],
            spec["shape"][1:],
        )
        return None
    return _to_float(images, spec)


def calibration_samples(inputs, images, n=CALIBRATION_EXAMPLES, seed=1):
    """Representative samples ``[{name: [1, ...]}]`` for full int8 quantization."""
    count = len(images) if images is not None else n
    feeds = verify.make_feeds(inputs, images=images, n=count, seed=seed)
    return [{k: v[i : i + 1] for k, v in feeds.items()} for i in range(count)]


# -- one path --------------------------------------------------------------------------------


def _artifact(path_name, fmt, precision, inputs, outputs, base):
    return {
        "file": metadata_lib.artifact_file(path_name, fmt, precision),
        "path": path_name,
        "format": fmt,
        "precision": precision,
        "runtime": metadata_lib.RUNTIMES[fmt],
        "inputs": inputs,
        "outputs": outputs,
        **base,
    }


def export_path(
    name,
    model,
    export_dir,
    formats=FORMATS,
    info=None,
    run=None,
    test_images=None,
    calibration_images=None,
    seed=0,
):
    """Writes and verifies every artifact of one path; returns their metadata entries.

    ``run``: the run-level fields (``metadata.run_fields``); ``test_images`` /
    ``calibration_images``: uint8 images of the path's source domain, or None for random.
    """
    graph.check_exportable(model, name)
    info = dict(info or {})
    run = run or metadata_lib.run_fields(None, None, None, model.inputs[0].shape[1] or 0, ())
    inputs, outputs = graph.io_specs(model, info, run.get("domains", ()))
    base = {**run, **{k: v for k, v in info.items() if k not in ("input_kinds", "input_labels")}}
    base["path_description"] = base.pop("description", "")
    image_spec = _image_spec(inputs)

    feed_sets = {}
    test = _fit_images(test_images, image_spec)
    if test is not None:
        feed_sets[verify.TEST_SET] = verify.make_feeds(inputs, images=test, seed=seed)
    feed_sets[verify.RANDOM_SET] = verify.make_feeds(inputs, n=RANDOM_EXAMPLES, seed=seed + 1)
    reference = {s: graph.keras_outputs(model, f) for s, f in feed_sets.items()}
    calibration = calibration_samples(inputs, _fit_images(calibration_images, image_spec))

    artifacts = []

    def fail(artifact, stage, error):
        """Marks ``artifact`` failed at ``stage`` with a one-line reason (traceback in the log)."""
        logging.exception("%s of %s failed.", stage.capitalize(), artifact["file"])
        reason = " ".join(str(error).split())[:300]
        artifact.update(
            status=metadata_lib.FAILED,
            error=f"{stage} failed: {type(error).__name__}: {reason}",
        )

    def record(artifact, writer):
        """Writes one artifact with ``writer(path)`` and checks it; failures become entries."""
        path = os.path.join(export_dir, artifact["file"])
        started = time.perf_counter()
        try:
            writer(path)
        except tflite.ConversionNotSupported as e:
            artifact.update(status=metadata_lib.NOT_SUPPORTED, reason=str(e))
            artifacts.append(artifact)
            return
        except Exception as e:
            fail(artifact, "export", e)
            artifacts.append(artifact)
            return
        artifact["export_seconds"] = round(time.perf_counter() - started, 3)
        artifact["size_bytes"] = graph.size_bytes(path)
        try:
            runner = verify.runner(path, artifact)
            artifact["parity"] = verify.check(runner, reference, feed_sets, artifact)
            artifact["status"] = (
                metadata_lib.OK if artifact["parity"]["passed"] else metadata_lib.FAILED
            )
        except Exception as e:
            fail(artifact, "parity check", e)
        artifacts.append(artifact)

    def new(fmt, precision="fp32"):
        return _artifact(name, fmt, precision, inputs, outputs, base)

    if "keras" in formats:
        record(new("keras"), lambda p: graph.write_keras(model, p))

    scratch = None
    if "savedmodel" in formats:
        record(new("savedmodel"), lambda p: graph.write_savedmodel(model, p))
    if "tflite" in formats:
        # TFLite is converted from a batch-1 SavedModel of its own (see export.tflite).
        scratch = tempfile.mkdtemp(prefix=f".{name}-savedmodel-", dir=export_dir)
        tflite_source = tflite.write_savedmodel(model, os.path.join(scratch, "model"))
        try:
            for _, precision in metadata_lib.TFLITE_VARIANTS:
                rep = (
                    tflite.representative_dataset(calibration) if precision == "int8_full" else None
                )
                artifact = new("tflite", precision)
                artifact["inputs"] = tflite.artifact_specs(inputs)
                artifact["outputs"] = tflite.artifact_specs(outputs)
                record(
                    artifact,
                    lambda p, precision=precision, rep=rep: tflite.write(
                        tflite_source, p, precision, rep
                    ),
                )
        finally:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
    if "onnx" in formats:
        onnx_artifact = new("onnx")
        record(onnx_artifact, lambda p: onnx_lib.write(model, p, onnx_artifact))
        if "parity" in onnx_artifact:
            path = os.path.join(export_dir, onnx_artifact["file"])
            onnx_lib.update_metadata(path, onnx_artifact)
            onnx_artifact["size_bytes"] = graph.size_bytes(path)
    if "onnx_int8" in formats:
        int8_artifact = new("onnx", "int8")
        fp32_onnx = os.path.join(export_dir, metadata_lib.artifact_file(name, "onnx"))
        record(
            int8_artifact,
            lambda p: onnx_quant.write(
                model, p, calibration, fp32_onnx if "onnx" in formats else None
            ),
        )
        if "parity" in int8_artifact:
            path = os.path.join(export_dir, int8_artifact["file"])
            onnx_lib.update_metadata(path, int8_artifact)
            int8_artifact["size_bytes"] = graph.size_bytes(path)
    for artifact in artifacts:
        artifact.setdefault("calibration", None)
        static = artifact["format"] == "onnx" and artifact["precision"] == "int8"
        if artifact["precision"] == "int8_full" or static:
            artifact["calibration"] = {
                "examples": len(calibration),
                "source": "training images" if calibration_images is not None else "random",
            }
    return artifacts


# -- whole models ----------------------------------------------------------------------------


def export_paths(
    paths,
    export_dir,
    formats=("tflite", "onnx"),
    infos=None,
    run=None,
    images=None,
    allow_parity_failure=False,
    print_table=True,
):
    """Exports ``{name: keras.Model}`` to ``export_dir``; the core of ``export_model_dir``.

    ``images``: ``{path name: (test uint8 images or None, calibration uint8 images or None)}``.
    Returns the same dict as ``export_model_dir``.
    """
    formats = normalize_formats(formats)
    if not formats:
        raise ValueError(f"No export formats given: choose from {', '.join(FORMATS)}.")
    if not paths:
        raise ValueError("There are no translation paths to export.")
    infos, images = infos or {}, images or {}
    os.makedirs(export_dir, exist_ok=True)
    if run is None:
        first = next(iter(paths.values()))
        run = metadata_lib.run_fields(None, None, None, first.inputs[0].shape[1] or 0, ())
    artifacts = []
    for name, model in paths.items():
        test, calibration = images.get(name, (None, None))
        artifacts += export_path(
            name,
            model,
            export_dir,
            formats,
            info=infos.get(name),
            run=run,
            test_images=test,
            calibration_images=calibration,
        )

    meta_path = os.path.join(export_dir, metadata_lib.METADATA_FILE)
    old = []
    if os.path.exists(meta_path):
        try:
            old = metadata_lib.read_metadata(meta_path)["artifacts"]
        except ValueError:
            old = []
    # Re-exporting some paths or formats keeps the other entries of an earlier export, unless
    # they belong to another run.
    old = [a for a in old if a.get("checkpoint") == run.get("checkpoint")]
    all_paths = {n: infos.get(n, {}) for n in paths}
    meta = metadata_lib.new_metadata(run, all_paths)
    meta["formats"] = list(formats)
    meta["artifacts"] = metadata_lib.merge_artifacts(old, artifacts)
    for a in meta["artifacts"]:
        meta["paths"].setdefault(a["path"], {})
    metadata_lib.write_metadata(export_dir, meta)

    failed = [a for a in artifacts if a.get("status") == metadata_lib.FAILED]
    report = verify.table(artifacts)
    if print_table:
        print(f"\nExported to {export_dir}\n{report}\n", flush=True)
    result = {
        "export_dir": export_dir,
        "artifacts": artifacts,
        "headline": [verify.headline(a) for a in artifacts],
        "failed": len(failed),
        "table": report,
        "metadata": meta_path,
    }
    if failed and not allow_parity_failure:
        lines = "; ".join(verify.headline(a) for a in failed)
        raise ValueError(
            f"{len(failed)} exported artifact(s) in {export_dir} failed: {lines}. They are "
            "marked failed in metadata.json; pass --allow_parity_failure to keep them and go on."
        )
    return result


def export_model_dir(
    model_dir,
    formats=("tflite", "onnx"),
    allow_parity_failure=False,
    paths=None,
    export_dir=None,
):
    """Exports the latest checkpoint of ``model_dir`` (see the module docstring).

    Returns ``{"export_dir", "artifacts", "headline", "failed", "table", "metadata"}``;
    raises ValueError when an artifact misses its parity bound, unless
    ``allow_parity_failure``, and FileNotFoundError when model_dir has no trained model.
    """
    formats = normalize_formats(formats)
    if not formats:
        raise ValueError(f"No export formats given: choose from {', '.join(FORMATS)}.")
    from trainer.train_lib import load_trained

    trained = load_trained(model_dir)
    model, config = trained.model, trained.config
    all_paths = model.translation_paths()
    infos = {}
    try:
        infos = model.path_info() or {}
    except NotImplementedError:
        infos = {}
    if isinstance(paths, str):
        paths = [p.strip() for p in paths.split(",") if p.strip()]
    if paths:
        unknown = [p for p in paths if p not in all_paths]
        if unknown:
            raise ValueError(
                f"{config.method} has no path {', '.join(unknown)}: its paths are "
                f"{', '.join(all_paths)} (--paths takes a comma list of them)."
            )
        all_paths = {p: all_paths[p] for p in paths}
    d = config.data
    domains = list(d.domains) or [x for x in (d.domain_a, d.domain_b) if x]
    run = metadata_lib.run_fields(
        config.method, trained.step, trained.checkpoint, d.image_size, domains
    )
    run["dataset"] = d.dataset
    images = {}
    for name in all_paths:
        source = (infos.get(name) or {}).get("source_domain")
        images[name] = (
            load_images(config, source, "test", TEST_EXAMPLES),
            load_images(config, source, "train", CALIBRATION_EXAMPLES),
        )
    export_dir = export_dir or os.path.join(model_dir, "export")
    return export_paths(
        all_paths,
        export_dir,
        formats,
        infos=infos,
        run=run,
        images=images,
        allow_parity_failure=allow_parity_failure,
    )
