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


@pytest.fixture(params=["g.onnx", "g.tflite"])
def conditional(request, export_dir):
    model = os.path.join(export_dir, request.param)
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
    assert meta["inputs"][1]["labels"] == ["mnist", "digits", "mnist_m"]


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
        ({"target_domain": "svhn"}, None, 422, "unknown target_domain"),
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
def test_load_8_clients_no_failures(export_dir):
    """bench/service_load.py against the real CLI service: 8 clients, zero failed requests."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "bench", "service_load.py"),
            f"--model={os.path.join(export_dir, 'g.onnx')}",
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
