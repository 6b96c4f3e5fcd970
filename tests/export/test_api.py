"""export_model_dir and export_paths: CycleGAN parity per format, metadata contents, failures."""

import json
import os
import types

import keras
import numpy as np
import onnx
import pytest

from export import api, verify
from export import metadata as metadata_lib
from trainer import imaging
from trainer.config import EXPORT_FORMATS

from .conftest import SIZE, tiny_generator


def test_formats_are_defined_once():
    assert api.FORMATS is metadata_lib.FORMATS is EXPORT_FORMATS
    assert api.normalize_formats("tflite, ONNX,saved_model") == ("tflite", "onnx", "savedmodel")
    assert api.normalize_formats(["none"]) == ()
    with pytest.raises(ValueError, match="Unknown export format 'coreml'"):
        api.normalize_formats("tflite,coreml")


class FakeMethod:
    """What export_model_dir needs from a method: translation_paths() and path_info()."""

    def __init__(self):
        keras.utils.set_random_seed(3)
        self.paths = {"a2b": tiny_generator(name="gen_ab"), "b2a": tiny_generator(name="gen_ba")}

    def translation_paths(self):
        return dict(self.paths)

    def path_info(self):
        return {
            "a2b": {"source_domain": "mnist", "target_domain": "mnist_m", "description": "G_ab"},
            "b2a": {"source_domain": "mnist_m", "target_domain": "mnist", "description": "G_ba"},
        }


@pytest.fixture
def fake_model_dir(tmp_path, monkeypatch, digits_data_dir):
    from trainer.config import Config, DataConfig, EvalConfig, TrainConfig

    config = Config(
        method="cyclegan",
        data=DataConfig(image_size=SIZE, data_dir=digits_data_dir),
        train=TrainConfig(model_dir=str(tmp_path)),
        eval=EvalConfig(),
        hparams={},
    )
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))
    method = FakeMethod()
    ckpt = str(tmp_path / "checkpoints" / "ckpt-12")

    def fake_load(model_dir, step=None):
        assert model_dir == str(tmp_path)
        return types.SimpleNamespace(model=method, config=config, step=12, checkpoint=ckpt)

    monkeypatch.setattr(api, "load_trained", fake_load)
    return types.SimpleNamespace(dir=str(tmp_path), method=method, checkpoint=ckpt)


def test_export_model_dir_writes_metadata(fake_model_dir):
    result = api.export_model_dir(fake_model_dir.dir, formats=("onnx",), paths="a2b")
    export_dir = os.path.join(fake_model_dir.dir, "export")
    assert result["export_dir"] == export_dir and result["failed"] == 0
    assert result["headline"][0].startswith("a2b.onnx  max|err| ")
    assert result["headline"][0].endswith("ok")
    meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    assert meta["format_version"] == metadata_lib.FORMAT_VERSION
    assert meta["method"] == "cyclegan" and meta["step"] == 12
    # Stored relative to the model dir: no path of the training machine ships with the model.
    assert meta["checkpoint"] == "checkpoints/ckpt-12"
    text = open(os.path.join(export_dir, "metadata.json")).read()
    assert fake_model_dir.dir not in text and not os.path.isabs(a_checkpoint(meta))
    assert meta["image_size"] == SIZE and meta["domains"] == ["mnist", "mnist_m"]
    (a,) = meta["artifacts"]
    assert a["file"] == "a2b.onnx" and a["format"] == "onnx" and a["precision"] == "fp32"
    assert a["source_domain"] == "mnist" and a["target_domain"] == "mnist_m"
    assert a["inputs"] == [
        {
            "name": "image",
            "kind": "image",
            "shape": [None, SIZE, SIZE, 3],
            "dtype": "float32",
            "value_range": [-1.0, 1.0],
        }
    ]
    assert a["outputs"][0]["name"] == "translated" and a["outputs"][0]["kind"] == "image"
    assert a["preprocessing"] == imaging.PREPROCESSING
    assert a["size_bytes"] == os.path.getsize(os.path.join(export_dir, "a2b.onnx"))
    # Parity on held-out test images of the source domain and on random inputs.
    assert a["parity"]["judged_on"] == ["test_images", "random"] and a["parity"]["passed"]
    assert a["parity"]["test_images"]["examples"] == api.TEST_EXAMPLES
    assert a["parity"]["random"]["max_abs"] <= 1e-4 and a["status"] == "ok"
    # Timed on one example by the runtime that checked it: what picks the default variant.
    assert a["latency"]["batch"] == 1 and a["latency"]["threads"] == verify.RUNNER_THREADS
    assert a["latency"]["median_ms"] > 0 and a["latency"]["runs"] >= verify.LATENCY_MIN_RUNS
    # The same entry travels inside the ONNX file, with a named dynamic batch axis.
    proto = onnx.load(os.path.join(export_dir, "a2b.onnx"))
    props = {p.key: p.value for p in proto.metadata_props}
    embedded = json.loads(props[metadata_lib.ONNX_METADATA_KEY])
    assert not any(fake_model_dir.dir in v for v in props.values())
    assert embedded["checkpoint"] == "checkpoints/ckpt-12"
    assert embedded["parity"] == a["parity"] and props["domains"] == "mnist,mnist_m"
    assert proto.opset_import[0].version >= 17
    assert proto.graph.input[0].name == "image"
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"

    # Exporting the other path later keeps the first one's entry.
    api.export_model_dir(fake_model_dir.dir, formats="onnx", paths=["b2a"])
    meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    assert [a["file"] for a in meta["artifacts"]] == ["a2b.onnx", "b2a.onnx"]


def a_checkpoint(meta):
    (checkpoint,) = {a["checkpoint"] for a in meta["artifacts"]}
    return checkpoint


def test_relative_checkpoint():
    assert api.relative_checkpoint("/r/run", "/r/run/checkpoints/ckpt-4") == "checkpoints/ckpt-4"
    assert api.relative_checkpoint("gs://b/run/", "gs://b/run/checkpoints/ckpt-4") == (
        "checkpoints/ckpt-4"
    )
    assert api.relative_checkpoint("/r/run", "/elsewhere/ckpt-4") == "ckpt-4"
    assert api.relative_checkpoint("/r/run", None) is None


def test_unknown_path_and_no_formats(fake_model_dir):
    with pytest.raises(ValueError, match="has no path c2d: its paths are a2b, b2a"):
        api.export_model_dir(fake_model_dir.dir, formats="onnx", paths="c2d")
    with pytest.raises(ValueError, match="No export formats"):
        api.export_model_dir(fake_model_dir.dir, formats=())


def test_parity_failure_raises_unless_allowed(fake_model_dir, monkeypatch, tmp_path):
    monkeypatch.setitem(verify.BOUNDS, "fp32", {"max_abs": -1.0})  # nothing can pass
    monkeypatch.setattr(api, "load_images", lambda *args: None)  # as if the data were gone
    with pytest.raises(ValueError, match="--allow_parity_failure") as e:
        api.export_model_dir(fake_model_dir.dir, formats="onnx", paths="a2b")
    assert "a2b.onnx" in str(e.value)
    meta = json.load(open(os.path.join(fake_model_dir.dir, "export", "metadata.json")))
    assert meta["artifacts"][0]["status"] == "failed"
    result = api.export_model_dir(
        fake_model_dir.dir,
        formats="onnx",
        paths="a2b",
        allow_parity_failure=True,
        export_dir=str(tmp_path / "elsewhere"),
    )
    assert result["failed"] == 1 and result["headline"][0].endswith("failed")
    assert result["artifacts"][0]["parity"]["judged_on"] == ["random"]
    assert os.path.exists(tmp_path / "elsewhere" / "metadata.json")


def test_unsupported_int8_full_is_recorded_not_raised(tmp_path, monkeypatch):
    from export import tflite

    real = tflite.convert

    def convert(savedmodel_dir, precision="fp32", representative=None, float_model=None):
        if precision == "int8_full":
            raise tflite.ConversionNotSupported("op FOO has no int8 kernel")
        return real(savedmodel_dir, precision, representative, float_model)

    monkeypatch.setattr(tflite, "convert", convert)
    result = api.export_paths({"a2b": tiny_generator()}, str(tmp_path), formats="tflite")
    by_file = {a["file"]: a for a in result["artifacts"]}
    full = by_file["a2b_int8_full.tflite"]
    assert full["status"] == "not supported" and "FOO" in full["reason"]
    assert not os.path.exists(tmp_path / "a2b_int8_full.tflite")
    assert result["failed"] == 0
    assert any(
        line.startswith("a2b_int8_full.tflite  not supported") for line in result["headline"]
    )


@pytest.mark.slow
def test_cyclegan_generator_parity_in_every_format(tmp_path):
    """The ResNet generator (reflection pads, instance norm, transposed convs, tanh)."""
    keras.utils.set_random_seed(0)
    model = tiny_generator(32)
    rng = np.random.default_rng(0)
    # Smooth images, closer to photos than uniform noise.
    base = rng.integers(0, 256, (8, 4, 4, 3)).astype(np.float32)
    images = np.clip(
        np.repeat(np.repeat(base, 8, 1), 8, 2) + rng.normal(0, 10, (8, 32, 32, 3)), 0, 255
    )
    images = images.astype(np.uint8)
    result = api.export_paths(
        {"a2b": model},
        str(tmp_path),
        formats=api.FORMATS,
        run=metadata_lib.run_fields("cyclegan", 1, None, 32, ["mnist", "mnist_m"]),
        images={"a2b": (images, images)},
    )
    by_file = {a["file"]: a for a in result["artifacts"]}
    for file in ("a2b.tflite", "a2b.onnx", "a2b.keras", "a2b_savedmodel"):
        assert by_file[file]["parity"]["test_images"]["max_abs"] <= 1e-4, file
    assert by_file["a2b_fp16.tflite"]["parity"]["test_images"]["psnr"] >= 40
    assert by_file["a2b_int8.tflite"]["parity"]["test_images"]["psnr"] >= 30
    assert by_file["a2b_int8_full.tflite"]["parity"]["test_images"]["psnr"] >= 25
    assert by_file["a2b_int8_full.tflite"]["calibration"] == {
        "examples": 8,
        "source": "training images",
    }
    assert all(a["status"] == "ok" for a in result["artifacts"])
    # Quantized files are smaller than fp32.
    assert by_file["a2b_fp16.tflite"]["size_bytes"] < by_file["a2b.tflite"]["size_bytes"]
    # .keras loads in safe mode.
    loaded = keras.saving.load_model(tmp_path / "a2b.keras", safe_mode=True)
    x = images[:2].astype(np.float32) / 127.5 - 1
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-6)
    assert "a2b_int8_full.tflite" in result["table"] and "PSNR>=25" in result["table"]


def test_psnr_and_compare():
    ref = np.zeros((1, 4, 4, 3), np.float32)
    assert verify.psnr(ref, ref) == verify.PSNR_CAP
    assert verify.psnr(ref, ref + 0.02) == pytest.approx(20 * np.log10(2 / 0.02))
    specs = [{"name": "y", "value_range": [-1.0, 1.0]}]
    figures = verify.compare({"y": ref}, {"y": ref + 0.5}, specs)
    assert figures["max_abs"] == pytest.approx(0.5) and figures["mean_abs"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        verify.compare({"y": ref}, {"y": ref[:, :2]}, specs)


def test_feed_sets_run_in_chunks_of_bounded_size():
    # A set of large images runs in slices (the whole batch at 256 px held gigabytes of
    # activations); outputs come back whole and in order, and a small set runs in one call.
    images = np.arange(10 * 4 * 4 * 3, dtype=np.float32).reshape(10, 4, 4, 3)
    feeds = {"image": images, "target_domain": np.eye(10, dtype=np.float32)}
    calls = []

    def run(f):
        calls.append(len(f["image"]))
        assert len(f["target_domain"]) == len(f["image"])
        return {"y": f["image"] * 2, "c": f["target_domain"]}

    out = verify.in_chunks(run, feeds, chunk_values=3 * 4 * 4 * 3)
    assert calls == [3, 3, 3, 1]
    np.testing.assert_array_equal(out["y"], images * 2)
    np.testing.assert_array_equal(out["c"], feeds["target_domain"])
    calls.clear()
    verify.in_chunks(run, feeds)
    assert calls == [10]


def test_latency_is_the_median_of_a_bounded_number_of_single_example_calls(monkeypatch):
    feeds = {"image": np.zeros((5, 4, 4, 3), np.float32), "c": np.eye(5, dtype=np.float32)}
    calls = []

    def run(f):
        calls.append({k: v.shape[0] for k, v in f.items()})
        return {}

    figure = verify.latency(run, feeds)
    # One untimed warm-up, then calls until LATENCY_MIN_S is spent: a fast model stops at
    # LATENCY_MAX_RUNS.
    assert calls == [{"image": 1, "c": 1}] * (1 + verify.LATENCY_MAX_RUNS)
    assert figure["runs"] == verify.LATENCY_MAX_RUNS and figure["batch"] == 1
    # A slow model stops after LATENCY_MIN_RUNS calls once they pass the time.
    monkeypatch.setattr(verify, "LATENCY_MIN_S", 0.0)
    calls.clear()
    assert verify.latency(run, feeds)["runs"] == verify.LATENCY_MIN_RUNS
    assert len(calls) == 1 + verify.LATENCY_MIN_RUNS
