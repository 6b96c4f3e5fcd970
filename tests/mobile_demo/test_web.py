"""The browser page in a real headless Chromium matches ONNX Runtime in Python.

Needs Debian's ``chromium`` (or $CHROMIUM_PATH), the ``playwright`` Python package (used only to
drive that browser; it downloads nothing) and onnxruntime-web installed by
``mobile_demo/web/install_vendor.sh``. Without them the tests skip and say which is missing.
"""

import json
import os
import shutil
import threading
import urllib.error
import urllib.request

import numpy as np
import onnxruntime as ort
import pytest

from mobile_demo import serve_web

# From the machine notes: without the background-networking flags Chromium keeps trying to reach
# hosts a closed network refuses.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PARITY_BOUND = 1e-4  # fp32 parity bound on the float output


def _chromium():
    return os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")


@pytest.fixture
def server(export_dir):
    srv = serve_web.make_server(export_dir, port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()
    srv.server_close()


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.status, r.headers, r.read()


def test_server_routes_and_refuses_traversal(server, export_dir):
    status, headers, body = _get(server)
    assert status == 200 and b"onnxruntime-web" in body
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    _, _, meta = _get(server + "export/metadata.json")
    assert json.loads(meta)["image_size"] > 0
    status, headers, _ = _get(server + "export/a2b.onnx")
    assert status == 200
    # A file beside the export directory, with a suffix the server would serve from inside it.
    outside = os.path.join(os.path.dirname(export_dir), "outside.json")
    with open(outside, "w") as f:
        f.write("{}")
    bad_paths = ("export/../outside.json", "export/%2e%2e/outside.json", "export/a2b.tflite", "x")
    for bad in bad_paths:
        with pytest.raises(urllib.error.HTTPError) as e:
            _get(server + bad)
        assert e.value.code == 404


def test_server_needs_metadata(tmp_path):
    with pytest.raises(FileNotFoundError, match="metadata.json"):
        serve_web.make_server(str(tmp_path), port=0)


@pytest.fixture
def browser():
    exe = _chromium()
    if not exe or not os.path.exists(exe):
        pytest.skip("chromium not installed (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("python package playwright not installed (pip install -e '.[serve]')")
    if not serve_web.vendor_installed():
        pytest.skip(f"onnxruntime-web not installed: {serve_web.INSTALL_HINT}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _translate_in_page(page, png_path, model_file, domain=None):
    page.wait_for_function("window.demo && ['ready', 'error'].includes(window.demo.state)")
    assert page.evaluate("window.demo.error") is None
    runs = page.evaluate("window.demo.runs")
    page.select_option("#model", model_file)
    page.wait_for_function("window.demo.state !== 'loading'")
    page.set_input_files("#file", png_path)
    page.wait_for_function("!document.getElementById('translate').disabled")
    if domain is not None:
        page.select_option("#domain", label=domain)
    page.click("#translate")
    page.wait_for_function(
        f"window.demo.runs > {runs} || window.demo.state === 'error'", timeout=30000
    )
    result = page.evaluate("window.demo")
    assert result["error"] is None, result["error"]
    return result


@pytest.mark.slow
@pytest.mark.parametrize("model_file,domain", [("a2b.onnx", None), ("g.onnx", "mnist_m")])
def test_page_matches_onnxruntime(
    browser, server, export_dir, test_image_png, tmp_path, model_file, domain
):
    png_path, pixels = test_image_png
    page = browser.new_page()
    console = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    try:
        page.goto(server)
        result = _translate_in_page(page, png_path, model_file, domain)
    finally:
        page.screenshot(path=str(tmp_path / f"page_{model_file}.png"), full_page=True)
        print("\n".join(console))
    size = pixels.shape[0]
    x = (pixels.astype(np.float32) / 127.5 - 1.0)[None]
    page_input = np.asarray(result["lastInput"], np.float32).reshape(x.shape)
    # The page decoded the PNG to the very pixels Python reads.
    np.testing.assert_allclose(page_input, x, atol=1e-6)

    sess = ort.InferenceSession(os.path.join(export_dir, model_file))
    feeds = {"image": x}
    if domain is not None:
        with open(os.path.join(export_dir, "metadata.json")) as f:
            domains = json.load(f)["domains"]
        feeds["target_domain"] = np.eye(len(domains), dtype=np.float32)[[domains.index(domain)]]
    expected = sess.run(None, feeds)[0]
    page_output = np.asarray(result["lastOutput"], np.float32).reshape(result["lastShape"])
    assert page_output.shape == (1, size, size, 3)
    err = float(np.max(np.abs(page_output - expected)))
    print(
        f"{model_file}: browser vs onnxruntime max|err| {err:.2e}, {result['lastLatencyMs']:.1f} ms"
    )
    assert err <= PARITY_BOUND
    assert result["lastLatencyMs"] > 0
    assert (tmp_path / f"page_{model_file}.png").stat().st_size > 0

    # The output canvas shows the uint8 image of that output.
    shown = page.evaluate(
        """() => {
        const c = document.getElementById('output');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data);
    }"""
    )
    shown = np.asarray(shown, np.int32).reshape(size, size, 4)[..., :3]
    want = np.clip(np.round((expected[0] + 1.0) * 127.5), 0, 255).astype(np.int32)
    assert np.max(np.abs(shown - want)) <= 1
    page.close()


@pytest.mark.slow
def test_page_translates_bundled_sample(browser, server):
    page = browser.new_page()
    page.goto(server)
    page.wait_for_function("window.demo && window.demo.state === 'ready'")
    # Only paths that take an image are offered (the noise path z is not).
    options = page.eval_on_selector_all("#model option", "els => els.map(e => e.value)")
    assert options == ["a2b.onnx", "g.onnx"]
    page.select_option("#sample", "digit_3.png")
    page.wait_for_function("!document.getElementById('translate').disabled")
    page.click("#translate")
    page.wait_for_function("window.demo.runs > 0 || window.demo.state === 'error'")
    result = page.evaluate("window.demo")
    assert result["error"] is None, result["error"]
    out = np.asarray(result["lastOutput"])
    assert out.size > 0 and np.all(np.abs(out) <= 1.0)
    page.close()


def test_nul_byte_in_the_url_is_a_400(export_dir, capfd):
    import socket

    srv = serve_web.make_server(export_dir, port=0, verbose=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        port = srv.server_address[1]
        for target in (b"/export/a%00.json", b"/export/a\x00.json", b"/%00"):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                sock.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = sock.recv(4096)
            assert answer.startswith(b"HTTP/1.0 400"), answer
        assert _get(f"http://127.0.0.1:{port}/")[0] == 200  # still serving
    finally:
        srv.shutdown()
        srv.server_close()
    assert "Traceback" not in capfd.readouterr().err
