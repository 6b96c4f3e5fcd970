"""Translator: TF-free loading, the one preprocessing, declared priors, below-bound refusal,
multi-image input, clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from export import runtime
from export.runtime import Translator
from trainer import imaging

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _expected(model, image, size):
    """What the Translator should return: ``imaging.load``'s preprocessing + the Keras model."""
    x = imaging.to_float(imaging.fit(image, size))[None]
    y = np.asarray(model(x, training=False))[0]
    return imaging.to_uint8(y)


@pytest.mark.parametrize("file", ["a2b.onnx", "a2b.tflite"])
def test_non_square_image_matches_imaging_load_and_the_model(tiny_export, tmp_path, file):
    """A 37x23 picture: the runtime crops and resizes exactly as ``imaging.load`` does, and its
    output is the Keras model's on that picture within 1e-5."""
    export_dir, model, _ = tiny_export
    t = Translator(os.path.join(export_dir, file), threads=1)
    pixels = np.random.default_rng(5).integers(0, 256, (23, 37, 3), dtype=np.uint8)
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    x = imaging.to_float(imaging.load(str(path), 16))[None]
    for source in (str(path), path.read_bytes(), Image.open(path), pixels, [pixels]):
        np.testing.assert_array_equal(t.preprocess(source), x)
    y = np.asarray(model(x, training=False))
    got = t.run({"image": t.preprocess(str(path))})["translated"]
    assert np.max(np.abs(got - y)) <= 1e-5
    diff = t.translate(str(path)).astype(int) - imaging.to_uint8(y[0]).astype(int)
    assert np.abs(diff).max() <= 1


@pytest.mark.parametrize("file", ["a2b.onnx", "a2b.tflite"])
def test_translate_matches_keras_with_resize_and_scaling(tiny_export, file):
    export_dir, model, _ = tiny_export
    t = Translator(os.path.join(export_dir, file), threads=1)
    assert t.image_size == 16 and t.input_names == ["image"] and t.output_names == ["translated"]
    assert t.domains == ["mnist", "mnist_m"] and t.metadata["path"] == "a2b"
    image = np.random.default_rng(1).integers(0, 256, (23, 30, 3), dtype=np.uint8)
    out = t.translate(image)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - _expected(model, image, 16).astype(int)).max() <= 1
    batch = t.translate(np.stack([image[:16, :16]] * 3))
    assert batch.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(batch[0], batch[2])


def test_translate_file_path_and_pil(tiny_export, tmp_path):
    export_dir, _, _ = tiny_export
    t = Translator(os.path.join(export_dir, "a2b.onnx"))
    image = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    path = tmp_path / "in.png"
    Image.fromarray(image).save(path)
    from_file = t.translate(str(path))
    np.testing.assert_array_equal(from_file, t.translate(image))
    np.testing.assert_array_equal(t.translate(Image.fromarray(image)), from_file)
    # A grayscale file is converted to RGB, as a user would expect.
    Image.fromarray(image[..., 0]).save(tmp_path / "gray.png")
    assert t.translate(str(tmp_path / "gray.png")).shape == (16, 16, 3)


def test_no_tensorflow_import(tiny_export):
    export_dir, _, _ = tiny_export
    code = f"""
import sys, numpy as np
from export.runtime import Translator
for f in ("a2b.onnx", "a2b.tflite"):
    t = Translator({export_dir!r} + "/" + f)
    out = t.translate(np.zeros((20, 20, 3), np.uint8))
    assert out.shape == (16, 16, 3), out.shape
assert "tensorflow" not in sys.modules, "tensorflow was imported"
assert "keras" not in sys.modules, "keras was imported"
print("clean")
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "clean" in proc.stdout


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.zeros((16, 16, 3), np.float32), "uint8"),
        (np.zeros((16, 16, 4), np.uint8), "alpha"),
        (np.zeros((16, 16, 1), np.uint8), "3 channels"),
        (np.zeros((16, 16), np.uint8), "grayscale"),
        (np.zeros((2, 2, 16, 16, 3), np.uint8), "shape"),
        (np.zeros((0, 16, 16, 3), np.uint8), "empty"),
    ],
)
def test_bad_images_raise_clear_errors(tiny_export, bad, message):
    t = Translator(os.path.join(tiny_export[0], "a2b.tflite"))
    with pytest.raises(ValueError, match=message):
        t.translate(bad)


def test_target_domain_on_single_input_path_is_an_error(tiny_export):
    t = Translator(os.path.join(tiny_export[0], "a2b.onnx"))
    with pytest.raises(ValueError, match="no target-domain input"):
        t.translate(np.zeros((16, 16, 3), np.uint8), target_domain="mnist")
    with pytest.raises(ValueError, match="translates images"):
        t.generate(2)


def test_missing_and_unknown_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Translator(str(tmp_path / "nope.onnx"))
    other = tmp_path / "model.pt"
    other.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"\.onnx and \.tflite"):
        Translator(str(other))


@pytest.mark.parametrize("file", ["a2b.onnx", "a2b.tflite"])
@pytest.mark.parametrize("keep", [0, 100, 0.5])
def test_truncated_or_corrupt_artifact(tiny_export, tmp_path, file, keep):
    data = open(os.path.join(tiny_export[0], file), "rb").read()
    n = int(len(data) * keep) if isinstance(keep, float) else keep
    broken = tmp_path / file
    broken.write_bytes(data[:n])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        Translator(str(broken), metadata={})
    garbage = tmp_path / ("g" + file)
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes())
    with pytest.raises(ValueError, match="corrupt or truncated"):
        Translator(str(garbage), metadata={})


def test_metadata_without_entry_for_file_is_an_error(tiny_export, tmp_path):
    export_dir = tiny_export[0]
    meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    meta["artifacts"] = [a for a in meta["artifacts"] if a["file"] != "a2b.onnx"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="no entry for a2b.onnx"):
        Translator(os.path.join(export_dir, "a2b.onnx"), metadata=str(path))


def test_onnx_without_metadata_json_uses_embedded_metadata(tiny_export, tmp_path):
    import shutil

    shutil.copy(os.path.join(tiny_export[0], "a2b.onnx"), tmp_path / "a2b.onnx")
    shutil.copy(os.path.join(tiny_export[0], "a2b.tflite"), tmp_path / "a2b.tflite")
    onnx_t = Translator(str(tmp_path / "a2b.onnx"))
    assert onnx_t.metadata["method"] == "cyclegan" and onnx_t.domains == ["mnist", "mnist_m"]
    # A bare .tflite falls back to the model's own shapes and the [-1, 1] convention.
    tfl = Translator(str(tmp_path / "a2b.tflite"))
    assert tfl.image_size == 16 and tfl.domains == []
    image = np.random.default_rng(3).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    diff = onnx_t.translate(image).astype(int) - tfl.translate(image).astype(int)
    assert np.abs(diff).max() <= 1


def test_run_cli_file_and_folder(tiny_export, tmp_path):
    from export import run

    model = os.path.join(tiny_export[0], "a2b.onnx")
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 24, 3), 40 * i, np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("not an image")
    assert (
        run.main(["--model", model, "--input", str(folder), "--output", str(tmp_path / "o")]) == 0
    )
    outs = sorted(os.listdir(tmp_path / "o"))
    assert outs == ["0.png", "1.png", "2.png"]
    assert Image.open(tmp_path / "o" / "0.png").size == (16, 16)
    single = tmp_path / "single.png"
    args = ["--model", model, "--input", str(folder / "1.png"), "--output", str(single)]
    assert run.main([*args, "--keep_size"]) == 0
    assert Image.open(single).size == (20, 20)  # the centre square the model saw
    assert run.main(["--model", model, "--input", str(tmp_path / "none.png"), "--output", "x"]) == 1


def _identity_onnx(path, inputs, outputs):
    """An ONNX model whose outputs are its inputs (``outputs[i] = inputs[i]``): what it returns
    is exactly what the Translator fed it."""
    import onnx
    from onnx import TensorProto, helper

    def info(name, shape):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n", *shape[1:]])

    nodes = [helper.make_node("Identity", [i], [o]) for (i, _), (o, _) in zip(inputs, outputs)]
    graph = helper.make_graph(
        nodes, "identity", [info(*i) for i in inputs], [info(*o) for o in outputs]
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return str(path)


def _noise_entry(z):
    return {
        "file": "z.onnx",
        "status": "ok",
        "inputs": [{"name": "z", "kind": "noise", "shape": [None, 8], **z}],
        "outputs": [{"name": "y", "kind": "tensor", "shape": [None, 8]}],
    }


@pytest.mark.parametrize(
    "z",
    [
        {"prior": {"distribution": "uniform", "low": -1.0, "high": 1.0}},
        {"distribution": "uniform(-1, 1)"},  # metadata written before priors were stored
    ],
)
def test_noise_is_drawn_from_the_declared_prior(tmp_path, z):
    model = _identity_onnx(tmp_path / "z.onnx", [("z", [None, 8])], [("y", [None, 8])])
    t = Translator(model, metadata=_noise_entry(z))
    feeds = t.generate(2000, seed=0)
    assert feeds.shape == (2000, 8)
    assert feeds.min() >= -1.0 and feeds.max() <= 1.0
    # Uniform, not a clipped normal: the spread of U(-1, 1) (std 0.577), all of the interval.
    assert abs(float(feeds.std()) - 3**-0.5) < 0.02 and feeds.min() < -0.99 < 0.99 < feeds.max()


def test_normal_prior_and_unknown_kind(tmp_path):
    model = _identity_onnx(tmp_path / "z.onnx", [("z", [None, 8])], [("y", [None, 8])])
    prior = {"prior": {"distribution": "normal", "mean": 2.0, "stddev": 0.5}}
    feeds = Translator(model, metadata=_noise_entry(prior)).generate(4000, seed=1)
    assert abs(float(feeds.mean()) - 2.0) < 0.02 and abs(float(feeds.std()) - 0.5) < 0.02
    entry = _noise_entry({})
    entry["inputs"][0]["kind"] = "tensor"
    with pytest.raises(ValueError, match="cannot make up"):
        Translator(model, metadata=entry).generate(1)


GROUPS = [
    {"name": "celeba", "labels": ["black_hair", "blond_hair", "male"]},
    {"name": "rafd", "labels": ["happy", "male"]},
]


def _grouped(tmp_path):
    model = _identity_onnx(
        tmp_path / "g.onnx",
        [("image", [None, 4, 4, 3]), ("c", [None, 5])],
        [("translated", [None, 4, 4, 3]), ("c_out", [None, 5])],
    )
    labels = [x for g in GROUPS for x in g["labels"]]
    image = {"kind": "image", "shape": [None, 4, 4, 3], "value_range": [-1, 1]}
    entry = {
        "file": "g.onnx",
        "inputs": [
            {"name": "image", **image},
            {"name": "c", "kind": "onehot", "shape": [None, 5], "labels": labels, "groups": GROUPS},
        ],
        "outputs": [
            {"name": "translated", **image},
            {"name": "c_out", "kind": "tensor", "shape": [None, 5]},
        ],
    }
    return Translator(model, metadata=entry)


@pytest.mark.parametrize(
    "name,index", [("blond_hair", 1), ("happy", 3), ("rafd/male", 4), ("celeba/male", 2)]
)
def test_grouped_labels_pick_the_label_in_its_group(tmp_path, name, index):
    t = _grouped(tmp_path)
    image = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    out = t.translate(image, target_domain=name)
    np.testing.assert_array_equal(out["translated"], image)
    np.testing.assert_array_equal(out["c_out"], np.eye(5, dtype=np.float32)[index])


@pytest.mark.parametrize(
    "name,message",
    [("male", "several groups.*GROUP/NAME"), ("svhn", "Unknown target_domain.*rafd/happy")],
)
def test_grouped_labels_errors_list_the_names(tmp_path, name, message):
    with pytest.raises(ValueError, match=message):
        _grouped(tmp_path).translate(np.zeros((4, 4, 3), np.uint8), target_domain=name)


def mark(export_dir, copy, file, status, psnr=24.995):
    """Copies ``export_dir`` to ``copy`` with ``file`` marked ``status`` (a PSNR miss)."""
    import shutil

    shutil.copytree(export_dir, copy)
    meta = json.loads((copy / "metadata.json").read_text())
    for a in meta["artifacts"]:
        if a["file"] == file:
            a["status"] = status
            a["parity"] = {
                "bound": {"psnr": 25.0},
                "test_images": {"psnr": psnr, "max_abs": 0.2, "examples": 64},
                "judged_on": ["test_images"],
                "passed": False,
            }
    (copy / "metadata.json").write_text(json.dumps(meta))
    return copy


@pytest.mark.parametrize("status", ["below bound", "failed"])
def test_below_bound_artifact_is_refused_unless_allowed(tiny_export, tmp_path, status):
    copy = mark(tiny_export[0], tmp_path / "export", "a2b.tflite", status)
    with pytest.raises(ValueError) as e:
        Translator(str(copy / "a2b.tflite"))
    message = str(e.value)
    assert f"marked {status!r}" in message
    # The figure with the digits that show which side of the bound it is on.
    assert "PSNR 24.995 dB on 64 test images, bound >= 25 dB" in message
    assert "allow_below_bound=True" in message
    assert "a2b.onnx" in message  # the variant within its bound to use instead
    t = Translator(str(copy / "a2b.tflite"), allow_below_bound=True)
    assert t.status == status and t.translate(np.zeros((16, 16, 3), np.uint8)).shape == (16, 16, 3)


def _art(precision, status="ok", path="a2b", fmt="tflite"):
    suffix = "" if precision == "fp32" else "_" + precision
    return {
        "file": f"{path}{suffix}.{fmt}",
        "path": path,
        "format": fmt,
        "precision": precision,
        "status": status,
    }


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_choose_artifact_prefers_the_fastest_variant_within_its_bound(fmt):
    order = runtime.VARIANT_PREFERENCE[fmt]
    meta = {"artifacts": [_art(p, fmt=fmt) for p in reversed(order)]}
    # Each in turn: the fastest within its bound, the next once it is marked out of bound.
    for i, precision in enumerate(order):
        assert runtime.choose_artifact(meta, formats=(fmt,))["precision"] == precision
        meta["artifacts"][len(order) - 1 - i]["status"] = ("below bound", "failed")[i % 2]
    with pytest.raises(ValueError, match="within its parity bound.*below bound"):
        runtime.choose_artifact(meta, formats=(fmt,))
    with pytest.raises(ValueError, match="paths are a2b"):
        runtime.choose_artifact(meta, "b2a", formats=(fmt,))
    # Asked for by precision: that one, whatever its status (loading it refuses it).
    chosen = runtime.choose_artifact(meta, formats=(fmt,), precision="fp32")
    assert chosen["file"] == f"a2b.{fmt}"
    with pytest.raises(ValueError, match="no fp64 .* it has"):
        runtime.choose_artifact(meta, formats=(fmt,), precision="fp64")


def test_choose_artifact_ranks_timed_variants_by_their_measured_latency():
    def timed(precision, ms, status="ok"):
        return {**_art(precision, status), "latency": {"median_ms": ms, "runs": 5}}

    # At 256 px the int8 variants are slower than fp32: the measurement decides, not the table.
    meta = {
        "artifacts": [
            timed("int8_full", 867.0),
            timed("int8", 771.0),
            timed("fp32", 737.0),
            timed("fp16", 747.0),
        ]
    }
    assert runtime.choose_artifact(meta)["precision"] == "fp32"
    meta["artifacts"][2]["status"] = "below bound"  # never a variant outside its bound
    assert runtime.choose_artifact(meta)["precision"] == "fp16"
    # One variant of the format without a figure (carried over from an older export): the
    # static order for all of them, so figures of different exports are never compared.
    del meta["artifacts"][0]["latency"]
    assert runtime.choose_artifact(meta)["precision"] == "int8_full"
    # Formats keep the order asked for; within each, the fastest.
    onnx = [
        {**_art("fp32", fmt="onnx"), "latency": {"median_ms": 1.0}},
        {**_art("int8", fmt="onnx"), "latency": {"median_ms": 2.0}},
    ]
    both = {"artifacts": meta["artifacts"] + onnx}
    assert runtime.choose_artifact(both, formats=("onnx", "tflite"))["file"] == "a2b.onnx"


def test_fastest_here_times_the_variants_within_their_bound_and_runs_the_fastest(
    tmp_path, monkeypatch
):
    from export import metadata as md
    from export import verify

    spec = [{"name": "image", "kind": "image", "shape": [1, 4, 4, 3], "value_range": [-1, 1]}]
    meta = {
        "artifacts": [
            {**_art(p, status), "inputs": spec, "outputs": []}
            for p, status in [
                ("int8_full", "below bound"),
                ("int8", "ok"),
                ("fp32", "ok"),
                ("fp16", "ok"),
            ]
        ]
    }
    md.write_metadata(str(tmp_path), meta)
    here = {"a2b_int8.tflite": 9.0, "a2b.tflite": 4.0, "a2b_fp16.tflite": 5.0}
    timed = []

    class FakeTranslator:
        def __init__(self, path, metadata=None, threads=None):
            self.file, self.threads = os.path.basename(path), threads

        def run(self, feeds):
            assert feeds["image"].shape == (1, 4, 4, 3)

    def fake_latency(run, feeds, threads=None):
        timed.append((run.__self__.file, threads))
        return {"median_ms": here[run.__self__.file]}

    monkeypatch.setattr(runtime, "Translator", FakeTranslator)
    monkeypatch.setattr(verify, "latency", fake_latency)
    chosen, times = runtime.fastest_here(str(tmp_path), threads=2)
    # fp32 measured fastest here, though the table ranks int8 first; below bound never timed.
    assert chosen["file"] == "a2b.tflite" and times == here
    assert sorted(timed) == sorted((f, 2) for f in here)
    lines = []
    model = runtime.resolve_model(tmp_path, formats=("tflite",), measure=True, log=lines.append)
    assert model == str(tmp_path / "a2b.tflite")
    assert lines == [
        "a2b: a2b.tflite 4 ms, a2b_fp16.tflite 5 ms, a2b_int8.tflite 9 ms (one input, timed "
        "here); running a2b.tflite (--precision skips the timing)"
    ]

    # A variant that cannot be loaded is left out and named; the others still run.
    class Damaged(FakeTranslator):
        def __init__(self, path, metadata=None, threads=None):
            if path.endswith("a2b.tflite"):
                raise ValueError("a2b.tflite is corrupt or truncated")
            super().__init__(path, metadata, threads)

    monkeypatch.setattr(runtime, "Translator", Damaged)
    lines.clear()
    model = runtime.resolve_model(tmp_path, formats=("tflite",), measure=True, log=lines.append)
    assert model == str(tmp_path / "a2b_fp16.tflite")
    assert lines[0] == "left out, could not be run: a2b.tflite: a2b.tflite is corrupt or truncated"
    monkeypatch.setattr(runtime, "Translator", FakeTranslator)
    # Named by precision: that one, untimed; a single candidate: untimed.
    timed.clear()
    assert runtime.resolve_model(tmp_path, None, ("tflite",), "int8", measure=True).endswith(
        "a2b_int8.tflite"
    )
    for a in meta["artifacts"][1:3]:
        a["status"] = "failed"
    assert runtime.fastest_here(str(tmp_path), metadata=meta) == (meta["artifacts"][3], {})
    assert timed == []


def test_resolve_model_picks_from_a_directory_and_names_a_file_misuse(tmp_path):
    from export import metadata as md

    meta = {"artifacts": [_art("fp32", fmt="onnx"), _art("int8", fmt="onnx")]}
    md.write_metadata(str(tmp_path), meta)
    assert runtime.resolve_model(tmp_path, formats=("onnx",)) == str(tmp_path / "a2b_int8.onnx")
    assert runtime.resolve_model(tmp_path, "a2b", ("onnx",), "fp32") == str(tmp_path / "a2b.onnx")
    with pytest.raises(ValueError, match="pass DIR/export"):
        runtime.resolve_model(tmp_path / "a2b.onnx", precision="int8")


def bomb_png(width, height):
    """A valid 1x1 PNG whose header claims width x height (what a decompression bomb shows)."""
    import io
    import struct
    import zlib

    buf = io.BytesIO()
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    chunk = b"IHDR" + struct.pack(">II", width, height) + data[24:29]
    return data[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


@pytest.mark.parametrize(
    "name,data,message",
    [
        ("empty.png", b"", "empty"),
        ("notes.png", b"not an image at all", "Cannot read image"),
        ("bomb.png", None, "decompression bomb"),
    ],
)
def test_run_cli_bad_files_named_and_skipped(tiny_export, tmp_path, capsys, name, data, message):
    from export import run

    model = os.path.join(tiny_export[0], "a2b.onnx")
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((20, 24, 3), 90, np.uint8)).save(folder / "good.png")
    (folder / name).write_bytes(bomb_png(30000, 30000) if data is None else data)
    out = tmp_path / "o"
    assert run.main(["--model", model, "--input", str(folder), "--output", str(out)]) == 0
    err = capsys.readouterr().err
    assert name in err and message in err and "Traceback" not in err
    assert "1 of 2 images translated" in err
    assert sorted(os.listdir(out)) == ["good.png"]
    # Alone, the bad file is the run's error: named, exit 1, no traceback.
    args = ["--model", model, "--input", str(folder / name), "--output", str(tmp_path / "x.png")]
    assert run.main(args) == 1
    err = capsys.readouterr().err
    assert message in err and name in err and "Traceback" not in err
    # A folder of only bad files: exit 1, saying nothing was translated.
    os.remove(folder / "good.png")
    assert run.main(["--model", model, "--input", str(folder), "--output", str(out)]) == 1
    assert "no image was translated" in capsys.readouterr().err


@pytest.mark.parametrize("file", ["a2b.onnx", "a2b.tflite"])
def test_run_cli_non_square_image_is_the_one_preprocessing(tiny_export, tmp_path, file):
    from export import run

    export_dir, model, _ = tiny_export
    pixels = np.random.default_rng(8).integers(0, 256, (41, 26, 3), dtype=np.uint8)
    src, dst = tmp_path / "tall.png", tmp_path / "out.png"
    Image.fromarray(pixels).save(src)
    args = ["--model", os.path.join(export_dir, file), "--input", str(src), "--output", str(dst)]
    assert run.main(args) == 0
    y = np.asarray(model(imaging.to_float(imaging.load(str(src), 16))[None], training=False))[0]
    diff = np.asarray(Image.open(dst)).astype(int) - imaging.to_uint8(y).astype(int)
    assert np.abs(diff).max() <= 1


# -- a trained StarGAN: the target domain chosen by name ---------------------------------------


def _digit_pngs(folder, n=3, size=24):
    """``n`` PNGs of a bright digit-like stroke on black, each a little different."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        pixels = np.zeros((size, size, 3), np.uint8)
        pixels[4 : size - 4, 8 + i : 12 + i] = 255
        pixels[4:8, 6 : size - 6] = 255
        paths.append(folder / f"{i}.png")
        Image.fromarray(pixels).save(paths[-1])
    return paths


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_trained_stargan_translator_takes_the_domain_by_name(trained_stargan, fmt):
    from trainer import checkpoints

    t = Translator(trained_stargan[fmt], threads=1)
    domains = list(trained_stargan["domains"])
    assert t.target_domains == domains
    model = checkpoints.load_trained(trained_stargan["model_dir"]).model
    image = np.random.default_rng(5).integers(0, 256, (20, 20, 3), dtype=np.uint8)
    x = imaging.to_float(imaging.fit(image, trained_stargan["size"]))[None]
    outputs = {}
    for name in domains:
        got = t.translate(image, target_domain=name)
        want = imaging.to_uint8(np.asarray(model.translate(x, name))[0])
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, name
        # By name, by index and by the graph's one-hot: one answer.
        np.testing.assert_array_equal(t.translate(image, target_domain=domains.index(name)), got)
        outputs[name] = got
    # The trained G(x, c) depends on c: each target domain gives another image.
    for a in domains:
        for b in domains:
            if a < b:
                assert np.abs(outputs[a].astype(int) - outputs[b].astype(int)).max() > 2, (a, b)
    with pytest.raises(ValueError, match="Unknown target_domain 'svhn': choose one of mnist, "):
        t.translate(image, target_domain="svhn")
    with pytest.raises(ValueError, match="needs target_domain="):
        t.translate(image)


def test_trained_stargan_through_the_run_cli(trained_stargan, run_module, tmp_path):
    inputs = _digit_pngs(tmp_path / "in")
    t = Translator(trained_stargan["onnx"], threads=1)
    for name in trained_stargan["domains"]:
        out = tmp_path / name
        proc = run_module(
            "export.run",
            f"--model={trained_stargan['onnx']}",
            f"--input={tmp_path / 'in'}",
            f"--output={out}",
            f"--target_domain={name}",
        )
        assert sorted(os.listdir(out)) == ["0.png", "1.png", "2.png"], proc.stdout
        for png in inputs:
            got = np.asarray(Image.open(out / png.name).convert("RGB"))
            np.testing.assert_array_equal(got, t.translate(str(png), target_domain=name))
    proc = run_module(
        "export.run",
        f"--model={trained_stargan['onnx']}",
        f"--input={inputs[0]}",
        f"--output={tmp_path / 'x.png'}",
        "--target_domain=svhn",
        check=False,
    )
    assert proc.returncode == 1
    assert "error: Unknown target_domain 'svhn': choose one of mnist, mnist_m, digits" in (
        proc.stderr
    )
    assert not (tmp_path / "x.png").exists()
    proc = run_module(
        "export.run",
        f"--model={trained_stargan['onnx']}",
        f"--input={inputs[0]}",
        f"--output={tmp_path / 'x.png'}",
        check=False,
    )
    assert proc.returncode == 1 and "target_domain" in proc.stderr, proc.stderr
