"""The README's onnxruntime + numpy snippet computes what Translator computes."""

import os

import numpy as np
import pytest

from export.runtime import Translator

EXAMPLE = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "mobile_demo",
    "ort_client_example.py",
)


@pytest.mark.parametrize("model,domain", [("a2b.onnx", None), ("translate.onnx", "mnist_m")])
def test_snippet_matches_translator(request, tmp_path, monkeypatch, model, domain):
    """On a toy image path and on a trained StarGAN's G(x, c)."""
    fixture = request.getfixturevalue("trained_stargan" if domain else "export_dir")
    export_dir = fixture["export_dir"] if domain else fixture
    os.symlink(export_dir, tmp_path / "export")
    monkeypatch.chdir(tmp_path)
    with open(EXAMPLE) as f:
        source = f.read().replace("a2b.onnx", model)
    namespace = {}
    exec(compile(source, EXAMPLE, "exec"), namespace)
    images = np.random.default_rng(0).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    got = namespace["translate"](images, domain)
    want = Translator(os.path.join(export_dir, model)).translate(images, target_domain=domain)
    assert got.dtype == np.uint8 and got.shape == (3, 16, 16, 3)
    np.testing.assert_array_equal(got, want)
