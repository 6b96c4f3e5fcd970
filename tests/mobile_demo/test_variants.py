"""Choosing among the ONNX variants of a path: the service's --model=DIR --precision, the load
benchmark's per-variant table, and the page's own per-variant latency (bench/web_latency.py)."""

import os
import re
import subprocess
import sys

import pytest

from tests.mobile_demo.test_web import _chromium, _missing

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = 16


@pytest.fixture(scope="module")
def int8_export(tmp_path_factory):
    """A tiny generator exported to ONNX fp32 and static int8 by the real export stage."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from export import api
    from export import metadata as md
    from trainer.networks import resnet_generator

    keras.utils.set_random_seed(0)
    root = str(tmp_path_factory.mktemp("variants") / "export")
    api.export_paths(
        {"a2b": resnet_generator(SIZE, filters=8, n_blocks=1, name="gen_ab")},
        root,
        formats=("onnx", "onnx_int8"),
        run=md.run_fields("cyclegan", 0, None, SIZE, []),
        allow_parity_failure=True,
        print_table=False,
    )
    assert sorted(os.listdir(root)) == ["a2b.onnx", "a2b_int8.onnx", "metadata.json"]
    return root


def _bench(script, *args, timeout=600):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, os.path.join(REPO, "bench", script), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_service_refuses_a_precision_the_export_lacks(int8_export, capsys):
    from mobile_demo import service

    assert service.main([f"--model={int8_export}", "--precision=int8", "--path=b2a"]) == 2
    assert "no onnx artifact of path 'b2a'; its paths are a2b" in capsys.readouterr().err
    model = os.path.join(int8_export, "a2b.onnx")
    assert service.main([f"--model={model}", "--precision=int8"]) == 2
    assert "pass DIR/export" in capsys.readouterr().err


@pytest.mark.slow
def test_service_load_serves_each_variant_of_an_export_dir(int8_export):
    """The real CLI service started on DIR/export once per --precisions entry, 8 clients."""
    done = _bench(
        "service_load.py",
        f"--model={int8_export}",
        "--precisions=fp32,int8",
        "--requests=24",
        "--duration=60",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = re.findall(r"^(a2b\S*\.onnx) 16px, 8 clients: 24/24 ok, 0 failed", done.stdout, re.M)
    assert rows == ["a2b.onnx", "a2b_int8.onnx"], done.stdout
    assert re.search(r"^a2b_int8\.onnx\s+-\s+-\s+[\d.]+\s+[\d.]+x", done.stdout, re.M)


@pytest.mark.slow
def test_page_times_every_onnx_variant_and_preselects_the_fastest(int8_export):
    """bench/web_latency.py drives the page's demo.benchmark in headless Chromium: a figure per
    ONNX variant, and the page preselects the variant it timed fastest at load."""
    from mobile_demo import serve_web

    if not _chromium() or not os.path.exists(_chromium()):
        _missing("chromium not installed (Debian: apt-get install -y chromium)")
    if not serve_web.vendor_installed():
        _missing(f"onnxruntime-web not installed: {serve_web.INSTALL_HINT}")
    done = _bench("web_latency.py", f"--export_dir={int8_export}", "--runs=2")
    assert done.returncode == 0, done.stdout + done.stderr
    rows = dict(re.findall(r"^(a2b\S*\.onnx)\s+\w+\s+([\d.]+)\s", done.stdout, re.M))
    assert sorted(rows) == ["a2b.onnx", "a2b_int8.onnx"], done.stdout
    assert all(float(ms) > 0 for ms in rows.values())
    # The page timed the variants itself at load and preselected the faster one.
    at_load = re.search(
        r"^page's own timing at load .*: (.*); preselected (\S+)$", done.stdout, re.M
    )
    assert at_load, done.stdout
    times = dict(re.findall(r"(a2b\S*\.onnx) ([\d.]+) ms", at_load.group(1)))
    assert sorted(times) == ["a2b.onnx", "a2b_int8.onnx"]
    assert at_load.group(2) == min(times, key=lambda f: float(times[f]))
    assert re.search(rf"^{re.escape(at_load.group(2))}\s.*<- preselected$", done.stdout, re.M)
