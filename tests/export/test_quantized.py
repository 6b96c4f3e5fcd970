"""Quantized variants below their PSNR bound are reported, not failures; figures near a bound."""

import json
import os

from export import api, verify
from export import metadata as metadata_lib

from .conftest import tiny_generator


def test_near_bound_shows_the_side():
    assert verify.near_bound(24.995, 25) == "24.995"
    assert verify.near_bound(25.04, 25) == "25.04"
    assert verify.near_bound(25.0, 25) == "25.0"
    assert verify.near_bound(31.26, 25) == "31.3"
    assert verify.near_bound(24.9999994, 25).startswith("24.99999")


def test_headline_never_rounds_onto_the_bound():
    artifact = {
        "file": "a2b_int8_full.tflite",
        "precision": "int8_full",
        "status": metadata_lib.BELOW_BOUND,
        "parity": {
            "bound": {"psnr": 25.0},
            "test_images": {"psnr": 24.995, "max_abs": 0.2, "examples": 64},
            "judged_on": ["test_images"],
            "passed": False,
        },
    }
    line = verify.headline(artifact)
    assert "PSNR 24.995 dB" in line and "BELOW BOUND" in line and "64 images" in line
    assert verify.verdict(artifact) == metadata_lib.BELOW_BOUND
    artifact["precision"] = "fp32"
    assert verify.verdict(artifact) == metadata_lib.FAILED
    artifact["parity"]["passed"] = True
    assert verify.verdict(artifact) == metadata_lib.OK


def test_below_bound_variant_is_kept_and_marked(tmp_path, monkeypatch, capsys):
    # No quantized variant can reach 1000 dB: every one is below its bound.
    for precision in verify.QUANTIZED:
        monkeypatch.setitem(verify.BOUNDS, precision, {"psnr": 1000.0})
    result = api.export_paths({"a2b": tiny_generator()}, str(tmp_path), formats="tflite")
    assert result["failed"] == 0 and result["below_bound"] == 3
    by_file = {a["file"]: a for a in result["artifacts"]}
    assert by_file["a2b.tflite"]["status"] == metadata_lib.OK
    for file in ("a2b_fp16.tflite", "a2b_int8.tflite", "a2b_int8_full.tflite"):
        assert by_file[file]["status"] == metadata_lib.BELOW_BOUND
        # Judged on at least 64 inputs (random here: the path has no test images).
        parity = by_file[file]["parity"]
        assert parity["random"]["examples"] >= verify.QUANTIZED_EXAMPLES
        assert os.path.exists(tmp_path / file)
    meta = json.load(open(tmp_path / "metadata.json"))
    marked = {a["file"]: a["status"] for a in meta["artifacts"]}
    assert marked["a2b_int8.tflite"] == "below bound" and marked["a2b.tflite"] == "ok"
    assert any("BELOW BOUND" in line for line in result["headline"])
    assert "WARNING: 3 quantized variant(s) below their PSNR bound" in result["table"]
    assert "BELOW BOUND" in capsys.readouterr().out


def test_test_images_judge_on_64(tmp_path):
    import numpy as np

    images = np.random.default_rng(0).integers(0, 256, (80, 16, 16, 3), dtype=np.uint8)
    result = api.export_paths(
        {"a2b": tiny_generator()},
        str(tmp_path),
        formats="tflite",
        images={"a2b": (images[: api.TEST_EXAMPLES], images)},
    )
    for a in result["artifacts"]:
        if a["precision"] != "fp32":
            assert a["parity"]["judged_on"] == ["test_images"]
            assert a["parity"]["test_images"]["examples"] == 64
