"""The edge runner: every TFLite variant through LiteRT, no TensorFlow in the process."""

import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from export.runtime import Translator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VARIANTS = ("", "_fp16", "_int8", "_int8_full")
# Max uint8 difference from the fp32 ONNX reference, by variant (tiny untrained models).
BOUNDS = {"": 1, "_fp16": 2, "_int8": 4, "_int8_full": 24}


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    return env


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(3)
    # Sizes differ from the model's: the runner resizes like Translator does.
    for i, shape in enumerate([(16, 16, 3), (20, 24, 3), (40, 40, 3)]):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"im{i}.png")
    Image.fromarray(rng.integers(0, 256, (16, 16), dtype=np.uint8)).save(folder / "gray.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_all_variants_without_tensorflow(export_dir, trained_stargan, image_folder, tmp_path):
    """In a fresh process where importing TensorFlow, Keras or ONNX Runtime fails, every
    variant of an image path and of a trained StarGAN's G(x, c) runs and matches the fp32 ONNX
    reference."""
    out_root = tmp_path / "out"
    cases = ((export_dir, "a2b", None), (trained_stargan["export_dir"], "translate", "mnist_m"))
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("tensorflow", "keras", "onnxruntime", "tf2onnx"):
                    raise ImportError("blocked on the edge: " + name)

        sys.meta_path.insert(0, Block())
        from mobile_demo import edge

        reports = {{}}
        for folder, path, domain in {cases!r}:
            for variant in {VARIANTS!r}:
                name = path + variant
                reports[name] = edge.run(
                    folder + "/" + name + ".tflite", {str(image_folder)!r},
                    {str(out_root)!r} + "/" + name, threads=2, target_domain=domain,
                    log=lambda *a: None)
        for variant in {VARIANTS!r}:
            name = "z" + variant
            reports[name] = edge.run(
                {export_dir!r} + "/" + name + ".tflite", None, {str(out_root)!r} + "/" + name,
                num=2, log=lambda *a: None)
        heavy = [m for m in ("tensorflow", "keras", "onnxruntime") if m in sys.modules]
        print(json.dumps({{"heavy": heavy, "reports": reports}}))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=_env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []

    inputs = sorted(p for p in os.listdir(image_folder) if p.endswith(".png"))
    # The runner computes what Translator computes from the same artifact (the fp32 one: from
    # the fp32 ONNX); how far a quantized variant is from fp32 is export's parity figure.
    for folder, path, domain in cases:
        for variant in VARIANTS:
            name = path + variant
            reference = Translator(
                os.path.join(folder, f"{name}.tflite" if variant else f"{path}.onnx")
            )
            assert len(result["reports"][name]["written"]) == len(inputs)
            for fname in inputs:
                got = np.asarray(Image.open(out_root / name / fname))
                src = np.asarray(Image.open(image_folder / fname).convert("RGB"))
                want = reference.translate(src, target_domain=domain)
                assert got.shape == want.shape == (16, 16, 3)
                err = np.max(np.abs(got.astype(int) - want.astype(int)))
                assert err <= 1, f"{name}/{fname}: {err}"

    # The noise path: same seed, same z, so every variant samples what ONNX Runtime samples.
    want = Translator(os.path.join(export_dir, "z.onnx")).generate(2, seed=0)
    for variant in VARIANTS:
        name = "z" + variant
        assert len(result["reports"][name]["written"]) == 4
        for output in ("x_a", "x_b"):
            for i in range(2):
                got = np.asarray(Image.open(out_root / name / f"sample_{output}_{i}.png"))
                err = np.max(np.abs(got.astype(int) - want[output][i].astype(int)))
                assert err <= BOUNDS[variant], f"{name} {output}[{i}]: {err}"


def test_cli_benchmark(trained_stargan, image_folder, tmp_path):
    model = os.path.join(trained_stargan["export_dir"], "translate_int8_full.tflite")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobile_demo.edge",
            f"--model={model}",
            f"--input={image_folder / 'im1.png'}",
            f"--output={tmp_path / 'out'}",
            "--target_domain=digits",
            "--threads=1",
            "--benchmark",
            "--runs=5",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "benchmark: median" in proc.stdout and "peak memory" in proc.stdout
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["runs"] == 5 and 0 < report["median_ms"] < 1000
    assert report["peak_memory_mb"] > 1
    assert report["model_size_mb"] == pytest.approx(os.path.getsize(model) / 1e6)
    assert (tmp_path / "out" / "im1.png").exists()


def test_target_domain_by_index_matches_name(trained_stargan, image_folder, tmp_path):
    from mobile_demo import edge

    model = trained_stargan["tflite"]  # domains mnist, mnist_m, digits
    quiet = {"log": lambda *a: None}
    edge.run(model, str(image_folder / "im0.png"), str(tmp_path / "a"), target_domain="1", **quiet)
    edge.run(
        model, str(image_folder / "im0.png"), str(tmp_path / "b"), target_domain="mnist_m", **quiet
    )
    edge.run(
        model, str(image_folder / "im0.png"), str(tmp_path / "c"), target_domain="mnist", **quiet
    )
    a, b, c = (np.asarray(Image.open(tmp_path / d / "im0.png")) for d in "abc")
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)  # the domain input changes the output


@pytest.mark.parametrize(
    "model,kwargs,message",
    [
        ("a2b.onnx", {}, "LiteRT only"),
        ("g.tflite", {}, "--target_domain"),
        ("g.tflite", {"target_domain": "svhn"}, "Unknown target_domain"),
        ("a2b.tflite", {"target_domain": "digits"}, "no target-domain input"),
        ("missing.tflite", {}, "does not exist"),
        ("z.tflite", {}, "takes no image"),
    ],
)
def test_errors_name_the_fix(export_dir, image_folder, tmp_path, model, kwargs, message):
    from mobile_demo import edge

    with pytest.raises((ValueError, FileNotFoundError), match=message):
        edge.run(
            os.path.join(export_dir, model),
            str(image_folder),
            str(tmp_path / "out"),
            log=lambda *a: None,
            **kwargs,
        )


def test_empty_folder_and_cli_error(export_dir, tmp_path):
    from mobile_demo import edge

    empty = tmp_path / "empty"
    empty.mkdir()
    model = os.path.join(export_dir, "a2b.tflite")
    with pytest.raises(FileNotFoundError, match="no image files"):
        edge.run(model, str(empty), str(tmp_path / "out"), log=lambda *a: None)
    assert edge.main([f"--model={model}", f"--input={empty}", f"--output={tmp_path}"]) == 2


def test_bad_files_in_a_folder_are_named_and_skipped(export_dir, image_folder, tmp_path):
    from tests.export.test_runtime import bomb_png

    (image_folder / "empty.png").write_bytes(b"")
    (image_folder / "bomb.png").write_bytes(bomb_png(30000, 30000))
    (image_folder / "text.jpg").write_text("not a picture")
    model = os.path.join(export_dir, "a2b.tflite")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "mobile_demo.edge",
            f"--model={model}",
            f"--input={image_folder}",
            f"--output={tmp_path / 'out'}",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    for name, why in (
        ("empty.png", "empty"),
        ("bomb.png", "decompression bomb"),
        ("text.jpg", "Cannot read image"),
    ):
        line = next(x for x in proc.stderr.splitlines() if name in x)
        assert line.startswith("skipped:") and why in line
    assert "4 of 7 images translated; 3 skipped" in proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert len(report["written"]) == 4 and len(report["skipped"]) == 3
    # Nothing usable: exit 2, saying no image was translated.
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.png").write_bytes(b"")
    from mobile_demo import edge

    assert edge.main([f"--model={model}", f"--input={bad}", f"--output={tmp_path / 'o2'}"]) == 2
    assert edge.main([f"--model={model}", f"--input={bad / 'empty.png'}", "--output=x"]) == 2


def test_export_dir_runs_the_default_variant_and_refuses_below_bound(export_dir, tmp_path, capsys):
    from mobile_demo import edge
    from tests.export.test_runtime import mark

    image = tmp_path / "in.png"
    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(image)
    lines = []
    report = edge.run(export_dir, str(image), str(tmp_path / "o"), path="a2b", log=lines.append)
    meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    ok = sorted(
        a["file"]
        for a in meta["artifacts"]
        if a["status"] == "ok" and a["format"] == "tflite" and a["path"] == "a2b"
    )
    # Every variant within its bound timed on this machine; the fastest runs.
    (timing,) = [line for line in lines if "timed here" in line]
    figures = {f: float(ms) for f, ms in re.findall(r"(a2b\S*\.tflite) (\S+) ms", timing)}
    assert sorted(figures) == ok and len(ok) > 1
    chosen = os.path.basename(report["model"])
    assert figures[chosen] == min(figures.values()) and f"running {chosen}" in timing

    copy = mark(export_dir, tmp_path / "export", "a2b_int8_full.tflite", "below bound", 23.7)
    report = edge.run(str(copy), str(image), str(tmp_path / "o"), path="a2b", log=lambda *a: None)
    assert os.path.basename(report["model"]) != "a2b_int8_full.tflite"  # never the default
    model = str(copy / "a2b_int8_full.tflite")
    args = [f"--model={model}", f"--input={image}", f"--output={tmp_path / 'o3'}"]
    assert edge.main(args) == 2
    err = capsys.readouterr().err
    assert "below bound" in err and "PSNR 23.70 dB" in err and "bound >= 25 dB" in err
    assert "--allow_below_bound" in err and "Traceback" not in err
    assert edge.main([*args, "--allow_below_bound"]) == 0
