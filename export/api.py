"""Export a trained model_dir: translation paths -> formats -> parity -> metadata.json.

    from export.api import export_model_dir
    result = export_model_dir("runs/cyclegan", formats=("tflite", "onnx"))
    print("\\n".join(result["headline"]))

``export_paths`` does the same for any ``{name: trainer.methods.paths.Path}`` (no model_dir
needed), which is what the tests and new methods use to check their ``translation_paths()``.
Every input and output entry of ``metadata.json`` comes from the path's declaration; paths
declared ``exported=False`` are skipped. Each export is a transaction (``export.transaction``):
the export directory holds the old complete set or the new one, never a mix, and re-exporting
some paths or formats of the same checkpoint carries the other artifacts into the new set.
"""

import dataclasses
import json
import os
import re
import shutil
import tempfile
import time

import numpy as np
from absl import logging

from export import graph, onnx_quant, tflite, transaction, verify
from export import metadata as metadata_lib
from export import onnx as onnx_lib
from trainer import imaging
from trainer.checkpoints import load_trained
from trainer.methods import paths as paths_lib

FORMATS = metadata_lib.FORMATS
DEFAULT_FORMATS = metadata_lib.DEFAULT_FORMATS
normalize_formats = metadata_lib.normalize_formats
# Test images per path: quantized variants are judged on them (verify.QUANTIZED_EXAMPLES).
TEST_EXAMPLES = verify.QUANTIZED_EXAMPLES
RANDOM_EXAMPLES = 4
CALIBRATION_EXAMPLES = 32


# -- declarations ------------------------------------------------------------------------------

_PRIOR_TEXT = re.compile(r"^\s*(uniform|normal)\s*\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)\s*$")
_INFO_KEYS = ("source_domain", "target_domain", "description", "exported")


def _parse_prior(text):
    match = _PRIOR_TEXT.match(str(text))
    if not match:
        return None
    kind, a, b = match.group(1), float(match.group(2)), float(match.group(3))
    return paths_lib.uniform(a, b) if kind == "uniform" else paths_lib.normal(a, b)


def legacy_path(name, model, info=None, default_prior=None):
    """A bare ``keras.Model`` and its ``path_info()`` entry as a declared ``Path``.

    For methods whose ``translation_paths()`` still return bare models: NHWC inputs become
    ``Image`` inputs, vector inputs ``Noise`` with the prior the info states
    (``"<input>_distribution": "uniform(-1, 1)"``, else ``default_prior``, the one the method
    states for another path); anything else must be declared with a ``Path``.
    """
    info = dict(info or {})
    inputs = []
    for t in model.inputs:
        prior = _parse_prior(info.get(f"{t.name}_distribution", "")) or default_prior
        if len(t.shape) == 4:
            inputs.append(paths_lib.Image(t.name))
        elif len(t.shape) == 2 and prior is not None:
            inputs.append(paths_lib.Noise(t.name, prior))
        else:
            raise ValueError(
                f"Path {name!r}: input {t.name} {tuple(t.shape)} has no declaration. Return "
                "trainer.methods.paths.Path objects from translation_paths() declaring each "
                "input (Image, OneHot, Noise with its prior)."
            )
    out_names = list(getattr(model, "output_names", None) or [])
    if len(out_names) != len(model.outputs):
        out_names = [f"output_{i}" for i in range(len(model.outputs))]
    outputs = tuple(
        paths_lib.Image(n) if len(t.shape) == 4 else paths_lib.Tensor(n)
        for n, t in zip(out_names, model.outputs)
    )
    extra = {
        k: v for k, v in info.items() if k not in _INFO_KEYS and not k.endswith("_distribution")
    }
    return paths_lib.Path(
        model=model,
        inputs=tuple(inputs),
        outputs=outputs,
        source_domain=info.get("source_domain"),
        target_domain=info.get("target_domain"),
        description=info.get("description", ""),
        exported=info.get("exported", True),
        extra=extra,
    )


def as_paths(paths, infos=None):
    """``{name: Path}`` from ``{name: Path or keras.Model}`` (bare models with ``infos``
    through ``legacy_path``)."""
    infos = infos or {}
    priors = [_parse_prior(v) for i in infos.values() for k, v in (i or {}).items()]
    default_prior = next((p for p in priors if p), None)
    return {
        name: p
        if isinstance(p, paths_lib.Path)
        else legacy_path(name, p, infos.get(name), default_prior)
        for name, p in paths.items()
    }


def method_paths(model):
    """The declared ``{name: Path}`` of a trained method (every path, exported or not)."""
    paths = model.translation_paths()
    if all(isinstance(p, paths_lib.Path) for p in paths.values()):
        return paths
    try:
        infos = model.path_info() or {}
    except NotImplementedError:
        infos = {}
    return as_paths(paths, infos)


# -- images for parity and calibration ---------------------------------------------------------


def load_images(config, domain, split, limit):
    """uint8 images of ``domain`` from the run's data, or None (with the reason logged)."""
    if config is None or not domain or not isinstance(domain, str):
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


def _image_spec(inputs):
    return next((s for s in inputs if s["kind"] == "image"), None)


def _fit_images(images, spec):
    """``images`` in the image input's value range if they match it (size, channels), else
    None."""
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
    return imaging.to_float(images, spec["value_range"])


def calibration_samples(inputs, images, n=CALIBRATION_EXAMPLES, seed=1):
    """Representative samples ``[{name: [1, ...]}]`` for full int8 quantization; noise inputs
    drawn from their declared prior."""
    count = len(images) if images is not None else n
    feeds = verify.make_feeds(inputs, images=images, n=count, seed=seed)
    return [{k: v[i : i + 1] for k, v in feeds.items()} for i in range(count)]


# -- one path ----------------------------------------------------------------------------------


@dataclasses.dataclass
class PathExport:
    """What every writer and check of one path shares."""

    name: str
    path: paths_lib.Path
    export_dir: str
    inputs: list
    outputs: list
    base: dict
    feed_sets: dict
    reference: dict
    calibration: list
    calibration_source: str
    artifacts: list = dataclasses.field(default_factory=list)

    @property
    def model(self):
        return self.path.model

    @property
    def in_names(self):
        return self.path.input_names()

    @property
    def out_names(self):
        return self.path.output_names()

    def file(self, artifact):
        return os.path.join(self.export_dir, artifact["file"])


def prepare(name, path, export_dir, run, test_images=None, calibration_images=None, seed=0):
    """Checks the path against its declaration; builds its metadata, feeds and Keras reference."""
    graph.check_exportable(name, path)
    inputs, outputs = graph.io_specs(path)
    base = {**run, **path.info(), "preprocessing": dict(imaging.PREPROCESSING)}
    base["path_description"] = base.pop("description", "")
    image_spec = _image_spec(inputs)

    feed_sets = {}
    test = _fit_images(test_images, image_spec)
    if test is not None:
        feed_sets[verify.TEST_SET] = verify.make_feeds(inputs, images=test, seed=seed)
    # Without test images the random set is what quantized variants are judged on.
    n_random = RANDOM_EXAMPLES if test is not None else verify.QUANTIZED_EXAMPLES
    feed_sets[verify.RANDOM_SET] = verify.make_feeds(inputs, n=n_random, seed=seed + 1)

    def keras_run(feeds):
        return graph.keras_outputs(path.model, feeds, path.output_names())

    reference = {s: verify.in_chunks(keras_run, f) for s, f in feed_sets.items()}
    calibration_fit = _fit_images(calibration_images, image_spec)
    return PathExport(
        name=name,
        path=path,
        export_dir=export_dir,
        inputs=inputs,
        outputs=outputs,
        base=base,
        feed_sets=feed_sets,
        reference=reference,
        calibration=calibration_samples(inputs, calibration_fit),
        calibration_source="training images" if calibration_fit is not None else "random",
    )


def new_artifact(job, fmt, precision="fp32"):
    """The metadata entry of one artifact of ``job``'s path, before it is written."""
    return {
        "file": metadata_lib.artifact_file(job.name, fmt, precision),
        "path": job.name,
        "format": fmt,
        "precision": precision,
        "runtime": metadata_lib.RUNTIMES[fmt],
        "inputs": job.inputs,
        "outputs": job.outputs,
        "calibration": None,
        **job.base,
    }


def mark_failed(artifact, stage, error):
    """Marks ``artifact`` failed at ``stage`` with a one-line reason (traceback in the log)."""
    logging.exception("%s of %s failed.", stage.capitalize(), artifact["file"])
    reason = " ".join(str(error).split())[:300]
    artifact.update(
        status=metadata_lib.FAILED,
        error=f"{stage} failed: {type(error).__name__}: {reason}",
    )


def write_and_check(job, artifact, writer):
    """Writes one artifact with ``writer(file)``, then checks its parity; failures become
    entries. Returns True when the file was written."""
    job.artifacts.append(artifact)
    file = job.file(artifact)
    started = time.perf_counter()
    try:
        writer(file)
    except tflite.ConversionNotSupported as e:
        artifact.update(status=metadata_lib.NOT_SUPPORTED, reason=str(e))
        return False
    except Exception as e:
        mark_failed(artifact, "export", e)
        return False
    artifact["export_seconds"] = round(time.perf_counter() - started, 3)
    artifact["size_bytes"] = graph.size_bytes(file)
    try:
        runner = verify.runner(file, artifact)
        artifact["parity"] = verify.check(runner, job.reference, job.feed_sets, artifact)
        artifact["status"] = verify.verdict(artifact)
        if artifact["format"] in verify.TIMED_FORMATS:
            artifact["latency"] = verify.latency(runner, next(iter(job.feed_sets.values())))
    except Exception as e:
        mark_failed(artifact, "parity check", e)
    return True


def export_keras(job):
    write_and_check(job, new_artifact(job, "keras"), lambda f: graph.write_keras(job.model, f))


def export_savedmodel(job):
    """The SavedModel artifact; returns its directory, or None when it could not be written."""
    artifact = new_artifact(job, "savedmodel")
    written = write_and_check(
        job,
        artifact,
        lambda f: graph.write_savedmodel(job.model, f, job.in_names, job.out_names),
    )
    return job.file(artifact) if written else None


def calibration_record(job):
    """The ``calibration`` entry of an artifact quantized with ``job.calibration``."""
    return {"examples": len(job.calibration), "source": job.calibration_source}


def export_tflite(job):
    """Every TFLite variant, converted from a batch-1 SavedModel of their own (built in a
    scratch directory; see ``export.tflite``): their entries declare that static batch."""
    scratch = tempfile.mkdtemp(prefix=f".{job.name}-savedmodel-", dir=job.export_dir)
    try:
        source = tflite.write_savedmodel(
            job.model, os.path.join(scratch, "model"), job.in_names, job.out_names
        )
        float_model = None  # the fp32 bytes, which full int8 reads its normalizations from
        for _, precision in metadata_lib.TFLITE_VARIANTS:
            artifact = new_artifact(job, "tflite", precision)
            artifact["inputs"] = tflite.artifact_specs(job.inputs)
            artifact["outputs"] = tflite.artifact_specs(job.outputs)
            representative = None
            if precision == "int8_full":
                representative = tflite.representative_dataset(job.calibration)
                artifact["calibration"] = calibration_record(job)
            written = write_and_check(
                job,
                artifact,
                lambda f, p=precision, r=representative, m=float_model: tflite.write(
                    source, f, p, r, m
                ),
            )
            if precision == "fp32" and written:
                with open(job.file(artifact), "rb") as f:
                    float_model = f.read()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export_onnx(job):
    """The ONNX artifact; its ``metadata_props`` carry the entry, parity figures included.
    Returns its file, or None when it could not be written."""
    artifact = new_artifact(job, "onnx")
    written = write_and_check(
        job,
        artifact,
        lambda f: onnx_lib.write(job.model, f, job.in_names, job.out_names, artifact),
    )
    if "parity" in artifact:
        onnx_lib.update_metadata(job.file(artifact), artifact)
        artifact["size_bytes"] = graph.size_bytes(job.file(artifact))
    return job.file(artifact) if written else None


def export_onnx_int8(job, fp32_onnx=None):
    """The static int8 (QDQ) ONNX artifact ``<path>_int8.onnx``, calibrated on
    ``job.calibration`` and quantized from ``fp32_onnx`` when that was written (else from a
    scratch conversion); ``metadata_props`` updated like the fp32 file's."""
    artifact = new_artifact(job, "onnx", "int8")
    artifact["calibration"] = calibration_record(job)
    write_and_check(
        job,
        artifact,
        lambda f: onnx_quant.write(
            job.model, f, job.in_names, job.out_names, job.calibration, fp32_onnx
        ),
    )
    if "parity" in artifact:
        onnx_lib.update_metadata(job.file(artifact), artifact)
        artifact["size_bytes"] = graph.size_bytes(job.file(artifact))


def export_path(
    name,
    path,
    export_dir,
    formats=DEFAULT_FORMATS,
    run=None,
    test_images=None,
    calibration_images=None,
    seed=0,
):
    """Writes and verifies every artifact of one declared path; returns their metadata entries.

    ``run``: the run-level fields (``metadata.run_fields``); ``test_images`` /
    ``calibration_images``: uint8 images of the path's source domain, or None for random.
    """
    run = run or metadata_lib.run_fields(None, None, None, _image_size(path), ())
    job = prepare(name, path, export_dir, run, test_images, calibration_images, seed)
    if "keras" in formats:
        export_keras(job)
    if "savedmodel" in formats:
        export_savedmodel(job)
    if "tflite" in formats:
        export_tflite(job)
    fp32_onnx = export_onnx(job) if "onnx" in formats else None
    if "onnx_int8" in formats:
        export_onnx_int8(job, fp32_onnx)
    return job.artifacts


def _image_size(path):
    shape = path.model.inputs[0].shape
    return (shape[1] or 0) if len(shape) == 4 else 0


# -- whole models ------------------------------------------------------------------------------


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
    """Exports ``{name: Path}`` to ``export_dir``; the core of ``export_model_dir``.

    Bare ``keras.Model`` values are accepted with ``infos`` (``{name: path_info entry}``, see
    ``legacy_path``). ``images``: ``{path name: (test uint8 images or None, calibration uint8
    images or None)}``. Returns the same dict as ``export_model_dir``.
    """
    formats = normalize_formats(formats)
    if not formats:
        raise ValueError(f"No export formats given: choose from {', '.join(FORMATS)}.")
    declared = {n: p for n, p in as_paths(paths, infos).items() if p.exported}
    if not declared:
        raise ValueError("There are no exported translation paths to export.")
    images = images or {}
    if run is None:
        first = next(iter(declared.values()))
        run = metadata_lib.run_fields(None, None, None, _image_size(first), ())
    with transaction.Transaction(export_dir) as tx:
        old = _current_metadata(tx)
        artifacts = []
        for name, path in declared.items():
            test, calibration = images.get(name, (None, None))
            artifacts += export_path(
                name,
                path,
                tx.build_dir,
                formats,
                run=run,
                test_images=test,
                calibration_images=calibration,
            )
        meta = metadata_lib.new_metadata(run, {n: p.info() for n, p in declared.items()})
        meta["formats"] = list(formats)
        meta["artifacts"] = metadata_lib.merge_artifacts(
            carry_over(tx, old, artifacts, run), artifacts
        )
        for a in meta["artifacts"]:
            meta["paths"].setdefault(a["path"], (old or {}).get("paths", {}).get(a["path"], {}))
        metadata_lib.write_metadata(tx.build_dir, meta)
        tx.commit()
    meta_path = os.path.join(export_dir, metadata_lib.METADATA_FILE)
    return _result(export_dir, artifacts, meta_path, allow_parity_failure, print_table)


def _current_metadata(tx):
    """The metadata of the set being replaced, or None (none, or unreadable)."""
    if not tx.current_dir:
        return None
    path = os.path.join(tx.current_dir, metadata_lib.METADATA_FILE)
    try:
        if tx.remote:
            import tensorflow as tf

            with tf.io.gfile.GFile(path, "r") as f:
                return metadata_lib.parse_metadata(f.read(), path)
        return metadata_lib.read_metadata(path)
    except (FileNotFoundError, ValueError) as e:
        logging.warning("Not keeping the earlier export's artifacts: %s", e)
        return None


def carry_over(tx, old, artifacts, run):
    """Entries of the current set that stay valid beside ``artifacts`` (same checkpoint, not
    re-exported), their files put into the new set; re-exporting some paths or formats keeps
    the others."""
    if not old:
        return []
    new_files = {a["file"] for a in artifacts}
    keep = [
        a
        for a in old.get("artifacts", [])
        if a.get("file") not in new_files
        and a.get("checkpoint") == run.get("checkpoint")
        and a.get("step") == run.get("step")
    ]
    without_file = [a for a in keep if a.get("status") == metadata_lib.NOT_SUPPORTED]
    carried = set(tx.carry([a["file"] for a in keep if a not in without_file]))
    return without_file + [a for a in keep if a["file"] in carried]


def _result(export_dir, artifacts, meta_path, allow_parity_failure, print_table):
    """The result dict, the printed table, and the error when a float32 artifact failed."""
    failed = [a for a in artifacts if a.get("status") == metadata_lib.FAILED]
    below = [a for a in artifacts if a.get("status") == metadata_lib.BELOW_BOUND]
    report = verify.table(artifacts)
    if below:
        report += "\n" + below_bound_note(below)
    if print_table:
        print(f"\nExported to {export_dir}\n{report}\n", flush=True)
    result = {
        "export_dir": export_dir,
        "artifacts": artifacts,
        "headline": [verify.headline(a) for a in artifacts]
        + ([below_bound_note(below)] if below else []),
        "failed": len(failed),
        "below_bound": len(below),
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


def below_bound_note(artifacts):
    """The loud line under the table when quantized variants missed their PSNR bound."""
    files = ", ".join(a["file"] for a in artifacts)
    return (
        f"WARNING: {len(artifacts)} quantized variant(s) below their PSNR bound: {files}. They "
        'are kept and marked "below bound" in metadata.json; runtimes refuse them unless '
        "explicitly allowed. Use the fp32 artifacts, or train longer and re-export."
    )


def _select(method, declared, names):
    """The exported paths among ``declared`` named by ``names`` (all of them when empty)."""
    exported = {n: p for n, p in declared.items() if p.exported}
    if isinstance(names, str):
        names = [p.strip() for p in names.split(",") if p.strip()]
    if not names:
        return exported
    unknown = [n for n in names if n not in exported]
    if unknown:
        inverse = [n for n in unknown if n in declared]
        note = f" ({', '.join(inverse)} run in Python only and are not exported)" if inverse else ""
        raise ValueError(
            f"{method} has no path {', '.join(unknown)}{note}: its paths are "
            f"{', '.join(exported)} (--paths takes a comma list of them)."
        )
    return {n: exported[n] for n in names}


def check_model_dir(model_dir):
    """Refuses a --model_dir that is missing, a file, or has an unreadable config.json, with
    the file named and the fix."""
    import tensorflow as tf

    from trainer import config as config_lib

    gfile = tf.io.gfile
    written_by = "the directory `python -m trainer.main` wrote (config.json and checkpoints/)"
    if not gfile.exists(model_dir):
        raise FileNotFoundError(f"--model_dir={model_dir} does not exist: pass {written_by}.")
    if not gfile.isdir(model_dir):
        raise ValueError(f"--model_dir={model_dir} is a file, not a directory: pass {written_by}.")
    path = os.path.join(model_dir, "config.json")
    if not gfile.exists(path):
        raise FileNotFoundError(f"{path} does not exist: --model_dir must be {written_by}.")
    fix = "restore it from the run that wrote it, or train into a new --model_dir"
    try:
        with gfile.GFile(path, "rb") as f:
            config_lib.Config.from_dict(json.loads(f.read()))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON ({e}): {fix}.") from None
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        raise ValueError(
            f"{path} is not a run configuration ({type(e).__name__}: {e}): {fix}."
        ) from None


def relative_checkpoint(model_dir, checkpoint):
    """``checkpoint`` relative to ``model_dir`` (``checkpoints/ckpt-40``), or just its name: no
    path of the training machine ships with a model."""
    if not checkpoint:
        return checkpoint
    root = str(model_dir).rstrip("/") + "/"
    checkpoint = str(checkpoint)
    if checkpoint.startswith(root):
        return checkpoint[len(root) :]
    if not transaction.is_remote(checkpoint) and not transaction.is_remote(root):
        rel = os.path.relpath(os.path.abspath(checkpoint), os.path.abspath(root))
        if not rel.startswith(".."):
            return rel
    return checkpoint.rstrip("/").rsplit("/", 1)[-1]


def export_model_dir(
    model_dir,
    formats=("tflite", "onnx"),
    allow_parity_failure=False,
    paths=None,
    export_dir=None,
):
    """Exports the latest checkpoint of ``model_dir`` (see the module docstring).

    Returns ``{"export_dir", "artifacts", "headline", "failed", "below_bound", "table",
    "metadata"}``; raises ValueError when a float32 artifact misses its parity bound or cannot be
    written, unless ``allow_parity_failure`` (quantized variants below their PSNR bound are
    counted in "below_bound" and never raise), and FileNotFoundError when model_dir has no
    trained model.
    """
    formats = normalize_formats(formats)
    if not formats:
        raise ValueError(f"No export formats given: choose from {', '.join(FORMATS)}.")
    check_model_dir(model_dir)
    trained = load_trained(model_dir)
    config = trained.config
    selected = _select(config.method, method_paths(trained.model), paths)
    d = config.data
    domains = list(d.domains) or [x for x in (d.domain_a, d.domain_b) if x]
    run = metadata_lib.run_fields(
        config.method,
        trained.step,
        relative_checkpoint(model_dir, trained.checkpoint),
        d.image_size,
        domains,
    )
    run["dataset"] = d.dataset
    images = {
        name: (
            load_images(config, path.source_domain, "test", TEST_EXAMPLES),
            load_images(config, path.source_domain, "train", CALIBRATION_EXAMPLES),
        )
        for name, path in selected.items()
    }
    return export_paths(
        selected,
        export_dir or os.path.join(model_dir, "export"),
        formats,
        run=run,
        images=images,
        allow_parity_failure=allow_parity_failure,
    )
