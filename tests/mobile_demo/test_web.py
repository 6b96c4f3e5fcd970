"""The browser page in a real headless Chromium matches ONNX Runtime in Python.

Needs Debian's ``chromium`` (or $CHROMIUM_PATH), the ``playwright`` Python package (used only to
drive that browser; it downloads nothing) and onnxruntime-web installed by
``mobile_demo/web/install_vendor.sh``. Without them the tests skip and say which is missing;
in CI (``CI=true``) they fail instead.
"""

import contextlib
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
from trainer import imaging

CHROMIUM_FLAGS = list(serve_web.HEADLESS_CHROMIUM_FLAGS)
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


def _missing(reason):
    if os.environ.get("CI", "").lower() in ("true", "1"):
        pytest.fail(f"{reason}; CI must run the browser tests")
    pytest.skip(reason)


@pytest.fixture
def browser():
    exe = _chromium()
    if not exe or not os.path.exists(exe):
        _missing("chromium not installed (Debian: apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("python package playwright not installed (pip install -e '.[test]')")
    if not serve_web.vendor_installed():
        _missing(f"onnxruntime-web not installed: {serve_web.INSTALL_HINT}")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@contextlib.contextmanager
def _serve(export_dir):
    srv = serve_web.make_server(str(export_dir), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/"
    finally:
        srv.shutdown()
        srv.server_close()


def _open(browser, url, console):
    page = browser.new_page()
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    page.goto(url)
    page.wait_for_function(
        "window.demo && ['ready', 'error', 'unavailable'].includes(window.demo.state)"
    )
    return page


def _png(tmp_path, name, pixels):
    from PIL import Image

    path = tmp_path / name
    Image.fromarray(pixels).save(path)
    return str(path)


def _reference(export_dir, model_file, png, domain):
    """(float input, float output) by the one preprocessing (imaging.load) and ONNX Runtime."""
    x = imaging.to_float(imaging.load(png, 16))[None]
    feeds = {"image": x}
    if domain is not None:
        feeds["target_domain"] = _onehot(export_dir, domain)
    return x, ort.InferenceSession(os.path.join(export_dir, model_file)).run(None, feeds)[0]


def _choose_and_translate(page, png):
    """Choose a file and click Translate at once (no waiting for it to be drawn)."""
    runs = page.evaluate("window.demo.runs")
    name = os.path.basename(png)
    page.set_input_files("#file", png)
    page.wait_for_function(f"window.demo.inputName === {name!r}")
    # The output of the previous input is gone as soon as another input is chosen.
    assert page.evaluate("window.demo.lastOutput") is None
    blank = page.evaluate(
        """() => { const c = document.getElementById('output');
        return c.getContext('2d').getImageData(0, 0, c.width, c.height).data.every(v => v === 0); }"""
    )
    assert blank
    page.click("#translate")
    page.wait_for_function(
        f"window.demo.runs > {runs} || window.demo.state === 'error'", timeout=30000
    )
    result = page.evaluate("window.demo")
    assert result["error"] is None, result["error"]
    assert result["lastInputName"] == name  # the output of THAT input
    return result


def _export_of(request, which):
    """(export dir, model file, target domain): the tiny unconditional a2b, or the trained
    StarGAN's conditional ``translate`` path."""
    if which == "a2b":
        return request.getfixturevalue("export_dir"), "a2b.onnx", None
    return request.getfixturevalue("trained_stargan")["export_dir"], "translate.onnx", "mnist_m"


def _onehot(export_dir, domain):
    domains = json.load(open(os.path.join(export_dir, "metadata.json")))["domains"]
    return np.eye(len(domains), dtype=np.float32)[[domains.index(domain)]]


@pytest.mark.slow
@pytest.mark.parametrize("which", ["a2b", "stargan"])
def test_choose_translate_choose_translate_matches_onnxruntime(browser, request, tmp_path, which):
    """A person's sequence on non-square pictures: each output is ONNX Runtime's on that
    input, prepared by the one preprocessing (the page resizes as Pillow does)."""
    export_dir, model_file, domain = _export_of(request, which)
    rng = np.random.default_rng(11)
    first = _png(tmp_path, "first.png", rng.integers(0, 256, (23, 37, 3), dtype=np.uint8))
    ramp = np.linspace(0, 255, 50 * 29 * 3).reshape(50, 29, 3).astype(np.uint8)
    second = _png(tmp_path, "second.png", ramp)
    console = []
    with _serve(export_dir) as url:
        page = _open(browser, url, console)
        try:
            page.select_option("#model", model_file)
            page.wait_for_function("window.demo.state !== 'loading'")
            # The target-domain picker shows for the conditional path only.
            assert page.is_visible("#domain-label") == (domain is not None)
            if domain is not None:
                page.select_option("#domain", label=domain)
            for png in (first, second, first):
                result = _choose_and_translate(page, png)
                x, expected = _reference(export_dir, model_file, png, domain)
                page_input = np.asarray(result["lastInput"], np.float32).reshape(x.shape)
                # Within 2/255 on average of Pillow's antialiased bicubic (it is exact here).
                mean_abs = float(np.mean(np.abs(page_input - x))) / 2.0
                assert mean_abs <= 2 / 255, mean_abs
                assert np.max(np.abs(page_input - x)) <= 2 / 127.5 + 1e-6
                print(
                    f"{os.path.basename(png)}: page vs imaging.load max |diff| "
                    f"{float(np.max(np.abs(page_input - x))) * 127.5:.4f} / 255"
                )
                output = np.asarray(result["lastOutput"], np.float32).reshape(result["lastShape"])
                own = ort.InferenceSession(os.path.join(export_dir, model_file)).run(
                    None,
                    {
                        "image": page_input,
                        **({"target_domain": _onehot(export_dir, domain)} if domain else {}),
                    },
                )[0]
                assert np.max(np.abs(output - own)) <= PARITY_BOUND
                assert np.mean(np.abs(output - expected)) / 2.0 <= 2 / 255
                shown = page.evaluate(
                    """() => { const c = document.getElementById('output');
                    return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data); }"""
                )
                shown = np.asarray(shown, np.int32).reshape(16, 16, 4)[..., :3]
                assert np.max(np.abs(shown - imaging.to_uint8(own[0]).astype(np.int32))) <= 1
        finally:
            page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
            print("\n".join(console))
            page.close()


@pytest.mark.slow
def test_domain_picker_drives_the_trained_stargan(browser, trained_stargan, tmp_path):
    """The picker lists the trained model's domains in order; each choice is the one-hot ONNX
    Runtime gets, and each domain gives its own picture."""
    export_dir = trained_stargan["export_dir"]
    ramp = np.linspace(0, 255, 16 * 16 * 3).reshape(16, 16, 3).astype(np.uint8)
    console = []
    with _serve(export_dir) as url:
        page = _open(browser, url, console)
        try:
            assert page.evaluate("window.demo.state") == "ready", console
            page.select_option("#model", "translate.onnx")
            page.wait_for_function("window.demo.state !== 'loading'")
            assert page.is_visible("#domain-label")
            labels = page.eval_on_selector_all("#domain option", "els => els.map(e => e.text)")
            assert labels == list(trained_stargan["domains"])
            outputs = {}
            for domain in labels:
                page.select_option("#domain", label=domain)
                # The same picture under a new name: a new choice the page reacts to.
                png = _png(tmp_path, f"ramp_{domain}.png", ramp)
                result = _choose_and_translate(page, png)
                out = np.asarray(result["lastOutput"], np.float32).reshape(result["lastShape"])
                _, expected = _reference(export_dir, "translate.onnx", png, domain)
                assert np.max(np.abs(out - expected)) <= 2 / 127.5, domain
                outputs[domain] = out
            assert np.max(np.abs(outputs["mnist"] - outputs["mnist_m"])) > 0.02
            assert np.max(np.abs(outputs["mnist"] - outputs["digits"])) > 0.02
        finally:
            print("\n".join(console))
            page.close()


@pytest.mark.slow
def test_page_translates_bundled_sample(browser, export_dir):
    with _serve(export_dir) as url:
        page = _open(browser, url, [])
        assert page.evaluate("window.demo.state") == "ready"
        # Only paths that take an image are offered (the noise path z is not).
        options = page.eval_on_selector_all("#model option", "els => els.map(e => e.value)")
        assert options == ["a2b.onnx", "g.onnx"]
        assert not page.is_visible("#domain-label")  # a2b is unconditional
        page.select_option("#sample", "digit_3.png")
        page.click("#translate")
        page.wait_for_function("window.demo.runs > 0 || window.demo.state === 'error'")
        result = page.evaluate("window.demo")
        assert result["error"] is None, result["error"]
        assert result["lastInputName"] == "digit_3.png"
        out = np.asarray(result["lastOutput"])
        assert out.size > 0 and np.all(np.abs(out) <= 1.0)
        page.close()


@pytest.mark.slow
def test_below_bound_models_are_marked_and_never_preselected(browser, export_dir, tmp_path):
    from tests.export.test_runtime import mark

    copy = mark(export_dir, tmp_path / "export", "a2b.onnx", "below bound", 23.7)
    with _serve(copy) as url:
        page = _open(browser, url, [])
        texts = page.eval_on_selector_all("#model option", "els => els.map(e => e.textContent)")
        assert any("a2b.onnx" in t and "below bound: PSNR 23.70 dB < 25 dB" in t for t in texts)
        assert page.eval_on_selector("#model", "s => s.value") == "g.onnx"
        page.close()


@pytest.mark.slow
def test_noise_only_export_says_so(browser, export_dir, tmp_path):
    """A CoGAN-like export (noise-to-image paths only) is described truthfully."""
    import shutil

    only = tmp_path / "cogan_export"
    only.mkdir()
    meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    meta["method"] = "cogan"
    meta["artifacts"] = [a for a in meta["artifacts"] if a["path"] == "z"]
    (only / "metadata.json").write_text(json.dumps(meta))
    shutil.copy(os.path.join(export_dir, "z.onnx"), only / "z.onnx")
    with _serve(only) as url:
        page = _open(browser, url, [])
        assert page.evaluate("window.demo.state") == "unavailable"
        status = page.text_content("#status")
        assert "only noise-to-image paths (z)" in status and "cogan" in status
        assert "lists no .onnx" not in status
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
