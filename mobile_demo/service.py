"""HTTP service over an exported model: image in, translated PNG out.

    pip install -e ".[serve]"       # fastapi, uvicorn, python-multipart
    python -m mobile_demo.service --model=DIR/export/a2b.onnx [--port=8000] [--host=127.0.0.1]
    python -m mobile_demo.service --model=DIR/export [--path=a2b] [--precision=int8|fp32]

With an export directory the service runs ``--path``'s ONNX variant named by ``--precision``, by
default the fastest within its parity bound on this machine: each is timed at start with
``--threads`` (``export.runtime.fastest_here``; the static int8 ``<path>_int8.onnx`` wins on CPUs
with int8 dot-product instructions, not always without them).

Endpoints:
  POST /translate   body: the image bytes (Content-Type image/* or application/octet-stream) or
                    multipart/form-data with a file field ``image``; ``target_domain`` as a query
                    parameter or form field for conditional paths. Answers image/png at the
                    model's size, after the project's one preprocessing (``trainer.imaging``:
                    shorter side to the model's size, antialiased bicubic, centre square).
  GET  /healthz     {"status": "ok", ...} (HEAD too)
  GET  /metadata    the artifact's metadata.json entry.

Every error is JSON ``{"error": ...}``: 400 (not a PNG, JPEG, WebP, GIF or BMP image, empty
body), 404 / 405 (no such route or method), 408 (the body did not arrive within
--body_timeout seconds), 413 (body over --max_body_bytes, picture over --max_pixels or
--max_side: decompression bombs are refused from the header, before decoding), 415
(unsupported content type), 422 (missing or unknown target_domain; the message lists the
names), 503 (more than --max_in_flight requests at once; retry), 500 (the model failed; the
message says how).

Memory is bounded by design: --max_pixels defaults to a small multiple of the model's input
(16x its pixels, at least 1 Mpx), at most --workers requests decode and run at a time, and at
most --max_in_flight are admitted at all (each holding at most --max_body_bytes). At start the
model is checked against its metadata.json (input names and shapes); an artifact marked
``below bound`` or ``failed`` there is refused unless --allow_below_bound. One
``export.runtime.Translator`` serves every request: ONNX Runtime sessions are safe to run from
several threads at once; LiteRT interpreters are not, so a .tflite model runs under a lock.
"""

import argparse
import asyncio
import io
import json
import os
import re
import sys
import threading
import time
import warnings

from mobile_demo.serve_web import port_number
from trainer import imaging

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_SIDE = 8192
DEFAULT_MAX_IN_FLIGHT = 64
# Requests decoded and run at once, each on one runtime thread: bench/service_load.py
# (--workers=1,2,4 --threads=1,2, 8 clients, 2 cores) measured a pool of single-threaded
# requests ahead of fewer requests with more threads each (fp32 247 vs 180 req/s at 4 x 1 vs
# 1 x 2; the int8 variant 262 vs 203): while one request decodes or encodes a PNG, another
# runs the model. Four bound the memory of requests in work.
DEFAULT_WORKERS = 4
DEFAULT_THREADS = 1
DEFAULT_BODY_TIMEOUT = 20.0
MIN_MAX_PIXELS = 1024 * 1024
IMAGE_TYPES = ("image/", "application/octet-stream")
# Pillow reads dozens of formats (EPS runs Ghostscript); the service decodes these only.
FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP")
SERVE_HINT = 'the service needs the "serve" extra: pip install -e ".[serve]"'


def default_max_pixels(image_size):
    """16 times the model's input pixels, at least 1 Mpx (1024 x 1024)."""
    return max(MIN_MAX_PIXELS, 16 * int(image_size or 0) ** 2)


class HTTPError(Exception):
    def __init__(self, status, message, headers=None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


class _BodyTooLarge(Exception):
    pass


class _BodyTimeout(Exception):
    pass


class Guard:
    """ASGI middleware: request bodies over ``max_bytes`` (declared or streamed) get 413, bodies
    slower than ``body_timeout`` seconds get 408, and requests beyond ``max_in_flight`` at once
    get 503, all before the app reads them."""

    def __init__(self, app, max_bytes, max_in_flight, body_timeout):
        self.app = app
        self.max_bytes = max_bytes
        self.max_in_flight = max_in_flight
        self.body_timeout = body_timeout
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        if self.in_flight >= self.max_in_flight:
            return await send_json(
                send,
                503,
                f"the service is busy ({self.in_flight} requests in flight, the limit is "
                f"{self.max_in_flight}); retry shortly",
                {b"retry-after": b"1"},
            )
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                return await send_json(send, 400, "invalid Content-Length header")
            if too_big:
                return await send_json(send, 413, self.too_large_message())
        received = 0
        deadline = time.monotonic() + self.body_timeout
        body_done = False

        async def guarded_receive():
            nonlocal received, body_done
            if body_done:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise _BodyTimeout from None
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
                body_done = not message.get("more_body", False)
            return message

        self.in_flight += 1
        try:
            await self.app(scope, guarded_receive, send)
        except _BodyTooLarge:
            await send_json(send, 413, self.too_large_message())
        except _BodyTimeout:
            await send_json(send, 408, self.timeout_message())
        finally:
            self.in_flight -= 1

    def too_large_message(self):
        return f"request body over {self.max_bytes} bytes; send a smaller image"

    def timeout_message(self):
        return f"the request body did not arrive within {self.body_timeout:g} s"


async def send_json(send, status, message, headers=None):
    body = json.dumps({"error": message}).encode()
    extra = list((headers or {}).items())
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _clean(text):
    """An exception's text without Python object reprs (``<_io.BytesIO object at 0x...>``)."""
    return re.sub(r"<[\w.]+ object at 0x[0-9a-fA-F]+>", "the body", str(text))


def decode_image(data, max_pixels, max_side=DEFAULT_MAX_SIDE, channels=3):
    """A PIL image (RGB or L) from encoded bytes; HTTPError for empty, unsupported, corrupt
    or huge images."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise HTTPError(400, "empty body: send an image (PNG, JPEG, WebP, GIF or BMP)")
    try:
        # The header only: format and size, nothing decoded yet.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as im:
                width, height = im.size
    except Image.DecompressionBombError as e:
        raise HTTPError(413, f"image refused as a decompression bomb ({_clean(e)})") from None
    except UnidentifiedImageError:
        raise HTTPError(
            400, "body is not a decodable image: send a PNG, JPEG, WebP, GIF or BMP file"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise HTTPError(400, f"body is not a decodable image ({_clean(e)})") from None
    if width > max_side or height > max_side or width * height > max_pixels:
        raise HTTPError(
            413,
            f"image of {width}x{height} pixels is over the limit ({max_side} per side, "
            f"{max_pixels} in all); send a smaller image",
        )
    try:
        return imaging.open_image(data, channels, max_pixels=max_pixels, name="the body")
    except imaging.ImageError as e:
        raise HTTPError(400, f"body is not a decodable image ({_clean(e)})") from None


def encode_png(image):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


class TranslationService:
    """The model and request handling, independent of the web framework."""

    def __init__(
        self,
        model_path,
        metadata=None,
        threads=DEFAULT_THREADS,
        max_pixels=None,
        max_side=DEFAULT_MAX_SIDE,
        allow_below_bound=False,
        workers=DEFAULT_WORKERS,
    ):
        from export.runtime import Translator

        try:
            self.translator = Translator(
                model_path, metadata=metadata, threads=threads, allow_below_bound=allow_below_bound
            )
        except ValueError as e:
            raise ValueError(str(e).replace("allow_below_bound=True", "--allow_below_bound")) from e
        if self.translator.image_size is None or self.translator.channels is None:
            raise ValueError(
                f"{model_path} does not translate images (inputs "
                f"{', '.join(self.translator.input_names)}); serve an image-to-image path."
            )
        self.max_pixels = max_pixels or default_max_pixels(self.translator.image_size)
        self.max_side = max_side
        # ONNX Runtime's InferenceSession.run is thread-safe; a LiteRT interpreter is not.
        self._lock = threading.Lock() if self.translator.format == "tflite" else None
        # Decoding and inference at most `workers` at a time: the memory of a request in work.
        self._work = threading.BoundedSemaphore(max(1, int(workers)))
        self.requests = 0
        self._count_lock = threading.Lock()

    def _check_target(self, target_domain):
        names = self.translator.target_domains
        if names and not target_domain:
            raise HTTPError(
                422, "this model is conditional: pass target_domain, one of " + ", ".join(names)
            )
        if not names and target_domain:
            raise HTTPError(422, "this model has no target domain input; omit target_domain")

    def _run(self, picture, target_domain):
        if self._lock is None:
            return self.translator.translate(picture, target_domain=target_domain or None)
        with self._lock:
            return self.translator.translate(picture, target_domain=target_domain or None)

    def translate_bytes(self, data, target_domain=None):
        self._check_target(target_domain)
        with self._work:
            picture = decode_image(data, self.max_pixels, self.max_side, self.translator.channels)
            t0 = time.perf_counter()
            try:
                out = self._run(picture, target_domain)
            except ValueError as e:  # unknown target domain (the message lists the names), ...
                raise HTTPError(422, _clean(e)) from None
            except Exception as e:  # the runtime itself failed: a JSON 500 that says how
                first = _clean(str(e).strip().splitlines()[0] if str(e).strip() else "")
                raise HTTPError(
                    500, f"the model failed on this request ({type(e).__name__}: {first[:300]})"
                ) from e
            elapsed = (time.perf_counter() - t0) * 1000.0
            del picture
        with self._count_lock:
            self.requests += 1
        if isinstance(out, dict):  # several image outputs: the first one is the translation
            out = next(iter(out.values()))
        return encode_png(out), elapsed

    def health(self):
        return {
            "status": "ok",
            "model": os.path.basename(self.translator.model_path),
            "format": self.translator.format,
            "image_size": self.translator.image_size,
            "target_domains": self.translator.target_domains,
            "max_pixels": self.max_pixels,
            "requests": self.requests,
        }


def _require_serve_extra():
    missing = []
    for module in ("fastapi", "uvicorn", "python_multipart"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module.replace("_", "-"))
    if missing:
        raise ImportError(f"{', '.join(missing)} not installed: {SERVE_HINT}")


def create_app(
    model_path,
    metadata=None,
    threads=DEFAULT_THREADS,
    max_body_bytes=DEFAULT_MAX_BODY_BYTES,
    max_pixels=None,
    max_side=DEFAULT_MAX_SIDE,
    allow_below_bound=False,
    max_in_flight=DEFAULT_MAX_IN_FLIGHT,
    workers=DEFAULT_WORKERS,
    body_timeout=DEFAULT_BODY_TIMEOUT,
):
    """The ASGI app (FastAPI) serving ``model_path``; see the module docstring."""
    for name, value in (
        ("max_body_bytes", max_body_bytes),
        ("max_in_flight", max_in_flight),
        ("workers", workers),
        ("body_timeout", body_timeout),
        ("max_side", max_side),
    ):
        if value is None or value <= 0:
            raise ValueError(f"--{name} must be > 0, got {value}.")
    if max_pixels is not None and max_pixels <= 0:
        raise ValueError(f"--max_pixels must be > 0, got {max_pixels} (omit it for the default).")
    _require_serve_extra()
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response
    from starlette.exceptions import HTTPException as StarletteHTTPException
    from starlette.requests import ClientDisconnect

    service = TranslationService(
        model_path, metadata, threads, max_pixels, max_side, allow_below_bound, workers
    )
    # Swagger UI and ReDoc load their scripts from a CDN: off. /openapi.json stays (local).
    app = FastAPI(
        title="img2img translation service",
        description="POST an image to /translate and get the translated PNG back.",
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc):
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _route_error(request, exc):
        # 404 / 405 in the service's own shape, not FastAPI's {"detail": ...}.
        message = {
            404: f"no route {request.url.path}; the service has POST /translate, "
            "GET /healthz and GET /metadata",
            405: f"{request.method} is not allowed on {request.url.path}",
        }.get(exc.status_code, str(exc.detail))
        return JSONResponse(
            {"error": message}, status_code=exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(ClientDisconnect)
    async def _gone(request, exc):
        # The client stopped sending its body: nobody is left to answer; no traceback.
        return Response(status_code=400)

    @app.exception_handler(_BodyTooLarge)
    async def _too_large(request, exc):
        # Raised by Guard's receive while the body streams in (no Content-Length given).
        return JSONResponse(
            {"error": f"request body over {max_body_bytes} bytes; send a smaller image"},
            status_code=413,
            headers={"Connection": "close"},
        )

    @app.exception_handler(_BodyTimeout)
    async def _timeout(request, exc):
        return JSONResponse(
            {"error": f"the request body did not arrive within {body_timeout:g} s"},
            status_code=408,
            headers={"Connection": "close"},
        )

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    def healthz():
        return service.health()

    @app.get("/metadata")
    def metadata_():
        return service.translator.metadata

    @app.post(
        "/translate",
        response_class=Response,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def translate(request: Request, target_domain: str | None = None):
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype == "multipart/form-data":
            try:
                form = await request.form(max_files=1, max_fields=8, max_part_size=max_body_bytes)
            except (_BodyTooLarge, _BodyTimeout, ClientDisconnect):
                raise
            except Exception as e:  # malformed multipart bodies raise parser-specific errors
                raise HTTPError(400, f"malformed multipart body ({type(e).__name__})") from None
            upload = form.get("image")
            if upload is None or isinstance(upload, str):
                raise HTTPError(400, "multipart body needs a file field named 'image'")
            data = await upload.read()
            field = form.get("target_domain")
            target_domain = target_domain or (field if isinstance(field, str) else None)
        elif ctype.startswith(IMAGE_TYPES) or not ctype:
            data = await request.body()
        else:
            raise HTTPError(
                415,
                f"unsupported Content-Type {ctype!r}: send image bytes (image/png, image/jpeg, "
                "application/octet-stream) or multipart/form-data with a field 'image'",
            )
        png, ms = await run_in_threadpool(service.translate_bytes, data, target_domain)
        return Response(png, media_type="image/png", headers={"X-Inference-Ms": f"{ms:.2f}"})

    return Guard(app, max_body_bytes, max_in_flight, body_timeout)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve an exported .onnx translation path.")
    parser.add_argument(
        "--model",
        required=True,
        help="DIR/export/<path>[_int8].onnx (or .tflite), or DIR/export (see --path, --precision)",
    )
    parser.add_argument("--path", default=None, help="path name when --model is a directory")
    parser.add_argument(
        "--precision",
        default=None,
        choices=("fp32", "int8"),
        help="ONNX variant when --model is a directory (default: the fastest within its "
        "bound, timed at start)",
    )
    parser.add_argument("--metadata", default=None, help="metadata.json (default: beside model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=port_number, default=8000)
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="runtime threads per request (the pool of --workers uses the cores)",
    )
    parser.add_argument("--max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument(
        "--max_pixels",
        type=int,
        default=None,
        help="largest picture decoded (default: 16x the model's input, at least 1 Mpx)",
    )
    parser.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE)
    parser.add_argument(
        "--max_in_flight",
        type=int,
        default=DEFAULT_MAX_IN_FLIGHT,
        help="requests admitted at once; more get 503",
    )
    parser.add_argument(
        "--workers", type=int, default=DEFAULT_WORKERS, help="requests decoded and run at once"
    )
    parser.add_argument(
        "--body_timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help="seconds a request body may take to arrive; slower ones get 408",
    )
    parser.add_argument(
        "--allow_below_bound",
        action="store_true",
        help="serve an artifact marked 'below bound' or 'failed' in metadata.json",
    )
    parser.add_argument("--log_level", default="warning", help="uvicorn log level")
    args = parser.parse_args(argv)
    try:
        from export.runtime import resolve_model

        model = resolve_model(
            args.model,
            args.path,
            ("onnx",),
            args.precision,
            measure=True,
            threads=args.threads,
            log=lambda line: print(line, file=sys.stderr),
        )
        app = create_app(
            model,
            args.metadata,
            args.threads,
            args.max_body_bytes,
            args.max_pixels,
            args.max_side,
            args.allow_below_bound,
            args.max_in_flight,
            args.workers,
            args.body_timeout,
        )
    except (ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import uvicorn
    from PIL import Image

    service = app.app.state.service
    # Process-wide guard too: Pillow refuses pictures over twice this outside decode_image.
    Image.MAX_IMAGE_PIXELS = service.max_pixels
    print(
        f"Serving {model} on http://{args.host}:{args.port}/translate "
        f"(max {service.max_pixels} pixels per image)",
        flush=True,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
