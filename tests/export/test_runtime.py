"""Translator: TF-free loading, pre/post-processing, multi-image input, clear errors."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from export.runtime import Translator

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _expected(model, image, size):
    """What the Translator should return, computed with PIL + the Keras model."""
    resized = np.asarray(Image.fromarray(image).resize((size, size), Image.BICUBIC))
    x = resized.astype(np.float32)[None] / 127.5 - 1.0
    y = np.asarray(model(x, training=False))[0]
    return np.clip(np.round((y + 1.0) * 127.5), 0, 255).astype(np.uint8)


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
    assert Image.open(single).size == (24, 20)
    assert run.main(["--model", model, "--input", str(tmp_path / "none.png"), "--output", "x"]) == 1
