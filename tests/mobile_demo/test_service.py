"""The HTTP service under real uvicorn on 127.0.0.1: translation, bad input, load."""

import io
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import zlib

import numpy as np
import pytest
from PIL import Image

from export.runtime import Translator

_SERVE = "pip install -e '.[serve]' for the service tests"
pytest.importorskip("fastapi", reason=_SERVE)
pytest.importorskip("python_multipart", reason=_SERVE)
httpx = pytest.importorskip("httpx", reason=_SERVE)
uvicorn = pytest.importorskip("uvicorn", reason=_SERVE)

from mobile_demo import service  # noqa: E402 - after the skips above

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MAX_BODY = 256 * 1024


def _png(pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _image(seed, size=16):
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def _bomb_png(width, height):
    """A valid 1x1 PNG whose header claims width x height (what a decompression bomb shows)."""
    data = _png(np.zeros((1, 1, 3), np.uint8))
    ihdr = struct.pack(">II", width, height) + data[24:29]
    chunk = b"IHDR" + ihdr
    return data[:12] + chunk + struct.pack(">I", zlib.crc32(chunk)) + data[33:]


class _Server:
    def __init__(self, app):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_level="error", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.server.started
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(params=["onnx", "tflite"])
def conditional(request, trained_stargan):
    """The service on a trained StarGAN's ``translate`` path (image + target_domain)."""
    model = trained_stargan[request.param]
    with _Server(service.create_app(model, max_body_bytes=MAX_BODY, max_pixels=512 * 512)) as s:
        yield s.url, model


@pytest.fixture
def unconditional(export_dir):
    model = os.path.join(export_dir, "a2b.onnx")
    with _Server(service.create_app(model, max_body_bytes=MAX_BODY)) as s:
        yield s.url, model


def _decode(content):
    return np.asarray(Image.open(io.BytesIO(content)))


def test_translate_raw_and_multipart(conditional):
    url, model = conditional
    reference = Translator(model)
    pixels = _image(0, size=24)  # resized to the model's 16 px, as Translator does
    r = httpx.post(
        url + "/translate",
        content=_png(pixels),
        params={"target_domain": "digits"},
        headers={"Content-Type": "image/png"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    np.testing.assert_array_equal(_decode(r.content), reference.translate(pixels, "digits"))

    r = httpx.post(
        url + "/translate",
        files={"image": ("x.png", _png(pixels), "image/png")},
        data={"target_domain": "mnist"},
    )
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(_decode(r.content), reference.translate(pixels, "mnist"))

    health = httpx.get(url + "/healthz").json()
    assert health["status"] == "ok" and health["requests"] == 2
    meta = httpx.get(url + "/metadata").json()
    assert meta["file"] == os.path.basename(model)
    assert meta["inputs"][1]["labels"] == ["mnist", "mnist_m", "digits"]


def test_the_target_domain_changes_the_answer(conditional):
    """The trained G(x, c) answers each target domain with its own image, the runtime's."""
    url, model = conditional
    reference = Translator(model)
    pixels = _image(7)
    answers = {}
    for domain in ("mnist", "mnist_m", "digits"):
        r = httpx.post(
            url + "/translate",
            content=_png(pixels),
            params={"target_domain": domain},
            headers={"Content-Type": "image/png"},
        )
        assert r.status_code == 200, r.text
        answers[domain] = _decode(r.content).astype(int)
        np.testing.assert_array_equal(answers[domain], reference.translate(pixels, domain))
    assert np.abs(answers["mnist"] - answers["mnist_m"]).max() > 2
    assert np.abs(answers["mnist"] - answers["digits"]).max() > 2


def test_concurrent_requests_get_their_own_results(conditional):
    """8 clients at once on the one shared session: each answer is its own request's."""
    url, model = conditional
    reference = Translator(model)
    domains = ["mnist", "digits", "mnist_m"]
    cases = [(_image(i), domains[i % 3]) for i in range(24)]
    results = [None] * len(cases)

    def worker(k):
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(k, len(cases), 8):
                pixels, domain = cases[i]
                r = client.post(
                    "/translate",
                    content=_png(pixels),
                    params={"target_domain": domain},
                    headers={"Content-Type": "image/png"},
                )
                results[i] = r.status_code, r.content

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for (pixels, domain), (status, content) in zip(cases, results):
        assert status == 200
        np.testing.assert_array_equal(_decode(content), reference.translate(pixels, domain))


BAD_BODIES = {
    "empty": (b"", "image/png", 400, "empty body"),
    "corrupt": (b"\x89PNG\r\n\x1a\n" + os.urandom(200), "image/png", 400, "not a decodable"),
    "truncated": (None, "image/png", 400, "not a decodable"),
    "text": (b"hello", "text/plain", 415, "unsupported Content-Type"),
    "json": (b'{"image": [1, 2, 3]}', "application/json", 415, "unsupported Content-Type"),
    "too_big_body": (b"\0" * (MAX_BODY + 1), "image/png", 413, "request body over"),
    "huge_dimensions": (None, "image/png", 413, "over the limit"),
    "bomb_header": (None, "image/png", 413, "decompression bomb"),
}


@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_input_gets_4xx_and_service_keeps_serving(conditional, case):
    url, _ = conditional
    body, ctype, status, message = BAD_BODIES[case]
    if case == "truncated":
        body = _png(_image(1))[:60]
    elif case == "huge_dimensions":
        # 4000 x 4000 compresses to a few KB: under the body limit, over the pixel limit.
        body = _png(np.zeros((4000, 4000, 3), np.uint8))
        assert len(body) < MAX_BODY
    elif case == "bomb_header":
        body = _bomb_png(100_000, 100_000)
    with httpx.Client(base_url=url, timeout=30) as client:
        r = client.post(
            "/translate",
            content=body,
            params={"target_domain": "digits"},
            headers={"Content-Type": ctype},
        )
        assert r.status_code == status, r.text
        assert message in r.json()["error"]
    # A new connection still gets served.
    ok = httpx.post(
        url + "/translate",
        content=_png(_image(2)),
        params={"target_domain": "digits"},
        headers={"Content-Type": "image/png"},
    )
    assert ok.status_code == 200
    assert httpx.get(url + "/healthz").json()["status"] == "ok"


def test_streamed_body_over_limit_is_refused(conditional):
    url, _ = conditional

    def chunks():  # no Content-Length: the limit applies while the body streams in
        for _ in range(8):
            yield b"\0" * (MAX_BODY // 4)

    r = httpx.post(
        url + "/translate", content=chunks(), headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 413
    assert httpx.get(url + "/healthz").status_code == 200


@pytest.mark.parametrize(
    "params,files,status,message",
    [
        ({}, None, 422, "pass target_domain"),
        (
            {"target_domain": "svhn"},
            None,
            422,
            "Unknown target_domain 'svhn': choose one of mnist, mnist_m, digits",
        ),
        ({"target_domain": "digits"}, {"other": ("x.png", b"x", "image/png")}, 400, "'image'"),
    ],
)
def test_target_domain_and_form_errors(conditional, params, files, status, message):
    url, _ = conditional
    if files is None:
        r = httpx.post(
            url + "/translate",
            content=_png(_image(3)),
            params=params,
            headers={"Content-Type": "image/png"},
        )
    else:
        r = httpx.post(url + "/translate", files=files, params=params)
    assert r.status_code == status
    assert message in r.json()["error"]


def test_unconditional_refuses_target_domain(unconditional):
    url, model = unconditional
    pixels = _image(4)
    r = httpx.post(url + "/translate", content=_png(pixels))  # no Content-Type: raw bytes
    assert r.status_code == 200
    np.testing.assert_array_equal(_decode(r.content), Translator(model).translate(pixels))
    r = httpx.post(url + "/translate", content=_png(pixels), params={"target_domain": "digits"})
    assert r.status_code == 422


def test_cli_error_for_missing_model(tmp_path):
    assert service.main([f"--model={tmp_path / 'none.onnx'}"]) == 2


def test_noise_path_is_refused(export_dir):
    with pytest.raises(ValueError, match="does not translate images"):
        service.create_app(os.path.join(export_dir, "z.onnx"))


@pytest.mark.slow
def test_load_8_clients_no_failures(trained_stargan):
    """bench/service_load.py against the real CLI service: 8 clients, zero failed requests."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "bench", "service_load.py"),
            f"--model={trained_stargan['onnx']}",
            "--requests=200",
            "--concurrency=8",
            "--duration=60",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    print(proc.stdout.splitlines()[0])
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failures"] == 0
    assert result["ok"] == 200
    assert result["throughput_rps"] > 0 and 0 < result["p50_ms"] <= result["p99_ms"]


def _onnx_reference(model, pixels, feeds=None):
    """The answer the service must give: ``imaging.load``'s preprocessing, ONNX Runtime, uint8."""
    import onnxruntime as ort

    from trainer import imaging

    x = imaging.to_float(imaging.load(_png(pixels), 16))[None]
    y = ort.InferenceSession(model).run(None, {"image": x, **(feeds or {})})[0][0]
    return imaging.to_uint8(y)


def test_non_square_picture_is_the_one_preprocessing(unconditional):
    url, model = unconditional
    pixels = np.random.default_rng(7).integers(0, 256, (24, 41, 3), dtype=np.uint8)
    r = httpx.post(url + "/translate", content=_png(pixels), headers={"Content-Type": "image/png"})
    assert r.status_code == 200, r.text
    np.testing.assert_array_equal(_decode(r.content), _onnx_reference(model, pixels))


def _encoded(fmt, pixels):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP"])
def test_allowed_formats_are_translated(unconditional, fmt):
    url, _ = unconditional
    r = httpx.post(url + "/translate", content=_encoded(fmt, _image(5)))
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("fmt", ["TIFF", "PPM", "ICO", "EPS"])
def test_other_formats_are_refused(unconditional, fmt):
    url, _ = unconditional
    body = (
        b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 16 16\n"
        if fmt == "EPS"
        else _encoded(fmt, _image(5))
    )
    r = httpx.post(url + "/translate", content=body, headers={"Content-Type": "image/png"})
    assert r.status_code == 400
    assert "PNG, JPEG, WebP, GIF or BMP" in r.json()["error"]


def test_error_messages_show_no_python_objects(unconditional):
    url, _ = unconditional
    for body in (b"\x89PNG\r\n\x1a\n" + bytes(100), b"GIF89a" + bytes(10), _png(_image(1))[:70]):
        r = httpx.post(url + "/translate", content=body, headers={"Content-Type": "image/png"})
        assert r.status_code == 400, r.text
        assert "object at 0x" not in r.text and "BytesIO" not in r.text


def test_routes_methods_head_and_docs(unconditional):
    url, _ = unconditional
    r = httpx.get(url + "/nope")
    assert r.status_code == 404 and "POST /translate" in r.json()["error"]
    r = httpx.get(url + "/translate")
    assert r.status_code == 405 and "GET is not allowed on /translate" in r.json()["error"]
    assert "detail" not in r.json()
    r = httpx.head(url + "/healthz")
    assert r.status_code == 200
    # Swagger UI / ReDoc would load scripts from a CDN: they are off.
    assert httpx.get(url + "/docs").status_code == 404
    assert httpx.get(url + "/redoc").status_code == 404
    assert httpx.get(url + "/healthz").json()["max_pixels"] == 1024 * 1024  # 16 px model


def test_default_max_pixels_follows_the_model():
    assert service.default_max_pixels(16) == 1024 * 1024
    assert service.default_max_pixels(512) == 16 * 512 * 512


@pytest.mark.parametrize(
    "flag",
    [
        "--max_body_bytes=0",
        "--max_body_bytes=-1",
        "--workers=0",
        "--max_in_flight=0",
        "--max_pixels=-5",
        "--body_timeout=0",
    ],
)
def test_non_positive_limits_are_refused(export_dir, capsys, flag):
    model = os.path.join(export_dir, "a2b.onnx")
    assert service.main([f"--model={model}", flag]) == 2
    err = capsys.readouterr().err
    assert flag.split("=")[0] in err and "must be > 0" in err


def test_metadata_that_contradicts_the_model_is_refused(export_dir, tmp_path, capsys):
    meta = json.load(open(os.path.join(export_dir, "metadata.json")))
    for a in meta["artifacts"]:
        if a["file"] == "a2b.onnx":
            a["inputs"][0]["shape"] = [None, 32, 32, 3]
    bad = tmp_path / "metadata.json"
    bad.write_text(json.dumps(meta))
    model = os.path.join(export_dir, "a2b.onnx")
    assert service.main([f"--model={model}", f"--metadata={bad}"]) == 2
    err = capsys.readouterr().err
    assert "does not describe this model" in err and "32" in err
    for a in meta["artifacts"]:
        if a["file"] == "a2b.onnx":
            a["inputs"][0]["name"] = "picture"
    bad.write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="lists inputs \\['picture'\\]"):
        service.create_app(model, metadata=str(bad))


def test_below_bound_artifact_needs_the_flag(export_dir, tmp_path, capsys):
    from tests.export.test_runtime import mark

    copy = mark(export_dir, tmp_path / "export", "a2b.onnx", "below bound", 23.7)
    assert service.main([f"--model={copy / 'a2b.onnx'}"]) == 2
    err = capsys.readouterr().err
    assert "below bound" in err and "PSNR 23.70 dB" in err and "--allow_below_bound" in err
    app = service.create_app(str(copy / "a2b.onnx"), allow_below_bound=True)
    assert app.app.state.service.translator.status == "below bound"


def _blocking(app):
    """Makes the service's model wait for ``release`` and set ``entered`` when a run starts."""
    svc = app.app.state.service
    entered, release = threading.Event(), threading.Event()
    run = svc.translator._backend.run

    def blocked(feeds):
        entered.set()
        release.wait(30)
        return run(feeds)

    svc.translator._backend.run = blocked
    return entered, release


def test_requests_over_the_in_flight_bound_get_503(export_dir):
    app = service.create_app(os.path.join(export_dir, "a2b.onnx"), max_in_flight=1, workers=1)
    entered, release = _blocking(app)
    with _Server(app) as s:
        first = {}
        t = threading.Thread(
            target=lambda: first.update(r=httpx.post(s.url + "/translate", content=_png(_image(0))))
        )
        t.start()
        assert entered.wait(30)
        r = httpx.post(s.url + "/translate", content=_png(_image(1)))
        assert r.status_code == 503 and "busy" in r.json()["error"]
        assert r.headers["retry-after"] == "1"
        assert httpx.head(s.url + "/healthz").status_code == 200  # not counted
        release.set()
        t.join(30)
        assert first["r"].status_code == 200


def test_runtime_failure_is_a_json_500(export_dir):
    app = service.create_app(os.path.join(export_dir, "a2b.onnx"))

    def broken(feeds):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : out of memory")

    app.app.state.service.translator._backend.run = broken
    with _Server(app) as s:
        r = httpx.post(s.url + "/translate", content=_png(_image(0)))
        assert r.status_code == 500
        assert "the model failed on this request (RuntimeError" in r.json()["error"]
        assert "out of memory" in r.json()["error"]


def _read_response(sock):
    """One whole HTTP response (headers and a Content-Length body) from ``sock``; a busy server
    may send them in separate packets."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_slow_body_gets_408(export_dir):
    app = service.create_app(os.path.join(export_dir, "a2b.onnx"), body_timeout=0.5)
    with _Server(app) as s:
        port = int(s.url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
            sock.sendall(
                b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
                b"Content-Length: 1000\r\n\r\n" + b"\x89PNG"
            )
            answer = _read_response(sock)
        assert answer.startswith("HTTP/1.1 408"), answer
        assert '"error"' in answer and "did not arrive within 0.5 s" in answer


def _start_cli(model, log, *flags):
    sys.path.insert(0, os.path.join(REPO, "bench"))
    try:
        import service_load
    finally:
        sys.path.pop(0)
    port = service_load._free_port()
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mobile_demo.service",
            f"--model={model}",
            f"--port={port}",
            "--log_level=info",
            *flags,
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url, port
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"the service did not start: {open(log.name).read()[-2000:]}")


def test_client_stopping_mid_body_logs_no_traceback(export_dir, tmp_path):
    log = open(tmp_path / "service.log", "w")
    proc, url, port = _start_cli(os.path.join(export_dir, "a2b.onnx"), log)
    try:
        for body in (b"\x89PNG", b'--b\r\nContent-Disposition: form-data; name="image"'):
            ctype = b"image/png" if body.startswith(b"\x89") else b"multipart/form-data; boundary=b"
            with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
                sock.sendall(
                    b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: "
                    + ctype
                    + b"\r\nContent-Length: 5000\r\n\r\n"
                    + body
                )
                # Wait until the service has read the part sent: it answers the next request
                # on another connection, then this client goes away mid-body.
                assert httpx.get(url + "/healthz").status_code == 200
        for _ in range(3):  # the service keeps serving, the disconnects processed before these
            assert httpx.post(url + "/translate", content=_png(_image(0))).status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()
    text = open(tmp_path / "service.log").read()
    assert "Traceback" not in text and "Exception" not in text, text[-3000:]


def test_missing_serve_extra_is_a_clear_error(export_dir):
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('fastapi', 'uvicorn'):\n"
        "            raise ImportError('No module named ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "from mobile_demo import service\n"
        f"sys.exit(service.main(['--model={os.path.join(export_dir, 'a2b.onnx')}']))\n"
    )
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=60
    )
    assert proc.returncode == 2
    assert 'pip install -e ".[serve]"' in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_48_concurrent_requests_at_default_max_pixels_stay_under_1gb(export_dir):
    """bench/service_load.py: 48 clients sending the largest picture the default --max_pixels
    admits (1024 x 1024 for a 16 px model); all answered, the service's peak RSS under 1 GB."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "bench", "service_load.py"),
            f"--model={os.path.join(export_dir, 'a2b.onnx')}",
            "--requests=96",
            "--concurrency=48",
            "--image_side=max",
            "--duration=240",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(proc.stdout.splitlines()[0])
    assert result["image_side"] == 1024 and result["ok"] == 96
    assert result["peak_rss_mb"] is not None and result["peak_rss_mb"] < 1024
