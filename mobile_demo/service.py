"""HTTP service over an exported model: image in, translated PNG out.

    python -m mobile_demo.service --model=DIR/export/a2b.onnx [--port=8000] [--host=127.0.0.1]

Endpoints:
  POST /translate   body: the image bytes (Content-Type image/* or application/octet-stream) or
                    multipart/form-data with a file field ``image``; ``target_domain`` as a query
                    parameter or form field for conditional paths. Answers image/png at the
                    model's size (inputs of other sizes are resized, as Translator does).
  GET  /healthz     {"status": "ok", ...}
  GET  /metadata    the artifact's metadata.json entry.

Bad input gets a JSON 4xx ``{"error": ...}``: 400 (not a decodable image, empty body), 413
(body over --max_body_bytes, image over --max_pixels or --max_side: decompression bombs are
refused from the header, before decoding), 415 (unsupported content type), 422 (missing or
unknown target_domain). One ``export.runtime.Translator`` serves every request: ONNX Runtime
sessions are safe to run from several threads at once; LiteRT interpreters are not, so a
.tflite model is run under a lock.
"""

import argparse
import io
import os
import sys
import threading
import time
import warnings

import numpy as np

DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_PIXELS = 4096 * 4096
DEFAULT_MAX_SIDE = 8192
IMAGE_TYPES = ("image/", "application/octet-stream")


class HTTPError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


class _BodyTooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware refusing request bodies over ``max_bytes`` (declared or streamed)."""

    def __init__(self, app, max_bytes):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > self.max_bytes
            except ValueError:
                return await _send_json(send, 400, "invalid Content-Length header")
            if too_big:
                return await _send_json(send, 413, self._message())
        received = 0

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await _send_json(send, 413, self._message())

    def _message(self):
        return f"request body over {self.max_bytes} bytes; send a smaller image"


async def _send_json(send, status, message):
    import json

    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def decode_image(data, max_pixels=DEFAULT_MAX_PIXELS, max_side=DEFAULT_MAX_SIDE):
    """uint8 RGB array from encoded image bytes; HTTPError for empty, corrupt or huge images."""
    from PIL import Image

    if not data:
        raise HTTPError(400, "empty body: send an image (PNG, JPEG, ...)")
    try:
        with warnings.catch_warnings():
            # PIL warns (and past 2x errors) on images over MAX_IMAGE_PIXELS: refuse both.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                width, height = im.size  # from the header; nothing decoded yet
                if width > max_side or height > max_side or width * height > max_pixels:
                    raise HTTPError(
                        413,
                        f"image of {width}x{height} pixels is over the limit ({max_side} per "
                        f"side, {max_pixels} in all); send a smaller image",
                    )
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)
                return np.asarray(im.convert("RGB"))
    except HTTPError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise HTTPError(413, f"image refused as a decompression bomb ({e})") from e
    except (OSError, ValueError, SyntaxError, EOFError, Image.UnidentifiedImageError) as e:
        raise HTTPError(400, f"body is not a decodable image ({type(e).__name__}: {e})") from e


def encode_png(image):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


class TranslationService:
    """The model and request handling, independent of the web framework."""

    def __init__(
        self,
        model_path,
        metadata=None,
        threads=None,
        max_pixels=DEFAULT_MAX_PIXELS,
        max_side=DEFAULT_MAX_SIDE,
    ):
        from export.runtime import Translator

        self.translator = Translator(model_path, metadata=metadata, threads=threads)
        if self.translator.image_size is None or not self._takes_image():
            raise ValueError(
                f"{model_path} does not translate images (inputs "
                f"{', '.join(self.translator.input_names)}); serve an image-to-image path."
            )
        self.max_pixels = max_pixels
        self.max_side = max_side
        # ONNX Runtime's InferenceSession.run is thread-safe; a LiteRT interpreter is not.
        self._lock = threading.Lock() if self.translator.format == "tflite" else None
        self.requests = 0
        self._count_lock = threading.Lock()

    def _takes_image(self):
        kinds = [s.get("kind") for s in self.translator.metadata.get("inputs", [])]
        return "image" in kinds if kinds else True

    def translate_bytes(self, data, target_domain=None):
        image = decode_image(data, self.max_pixels, self.max_side)
        if self.translator.target_domains:
            if not target_domain:
                raise HTTPError(
                    422,
                    "this model is conditional: pass target_domain, one of "
                    + ", ".join(self.translator.target_domains),
                )
            if target_domain not in self.translator.target_domains:
                raise HTTPError(
                    422,
                    f"unknown target_domain {target_domain!r}; choose one of "
                    + ", ".join(self.translator.target_domains),
                )
        elif target_domain:
            raise HTTPError(422, "this model has no target domain input; omit target_domain")
        t0 = time.perf_counter()
        try:
            if self._lock is None:
                out = self.translator.translate(image, target_domain=target_domain or None)
            else:
                with self._lock:
                    out = self.translator.translate(image, target_domain=target_domain or None)
        except ValueError as e:
            raise HTTPError(422, str(e)) from e
        elapsed = (time.perf_counter() - t0) * 1000.0
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
            "requests": self.requests,
        }


def create_app(
    model_path,
    metadata=None,
    threads=None,
    max_body_bytes=DEFAULT_MAX_BODY_BYTES,
    max_pixels=DEFAULT_MAX_PIXELS,
    max_side=DEFAULT_MAX_SIDE,
):
    """The ASGI app (FastAPI) serving ``model_path``."""
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse, Response

    service = TranslationService(model_path, metadata, threads, max_pixels, max_side)
    app = FastAPI(
        title="img2img translation service",
        description="POST an image to /translate and get the translated PNG back.",
    )
    app.state.service = service

    @app.exception_handler(HTTPError)
    async def _http_error(request, exc):
        return JSONResponse({"error": exc.message}, status_code=exc.status)

    @app.exception_handler(_BodyTooLarge)
    async def _too_large(request, exc):
        # Raised by BodyLimit's receive while the body streams in (no Content-Length given).
        return JSONResponse(
            {"error": f"request body over {max_body_bytes} bytes; send a smaller image"},
            status_code=413,
            headers={"Connection": "close"},
        )

    @app.get("/healthz")
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
            except _BodyTooLarge:
                raise
            except Exception as e:  # malformed multipart bodies raise parser-specific errors
                raise HTTPError(400, f"malformed multipart body ({type(e).__name__})") from e
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

    return BodyLimit(app, max_body_bytes)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve an exported .onnx translation path.")
    parser.add_argument("--model", required=True, help="DIR/export/<path>.onnx (or .tflite)")
    parser.add_argument("--metadata", default=None, help="metadata.json (default: beside model)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--threads", type=int, default=None, help="runtime intra-op threads")
    parser.add_argument("--max_body_bytes", type=int, default=DEFAULT_MAX_BODY_BYTES)
    parser.add_argument("--max_pixels", type=int, default=DEFAULT_MAX_PIXELS)
    parser.add_argument("--max_side", type=int, default=DEFAULT_MAX_SIDE)
    parser.add_argument("--log_level", default="warning", help="uvicorn log level")
    args = parser.parse_args(argv)
    from PIL import Image

    # Process-wide guard too: PIL refuses images over twice this even outside decode_image.
    Image.MAX_IMAGE_PIXELS = args.max_pixels
    try:
        app = create_app(
            args.model,
            args.metadata,
            args.threads,
            args.max_body_bytes,
            args.max_pixels,
            args.max_side,
        )
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    import uvicorn

    print(f"Serving {args.model} on http://{args.host}:{args.port}/translate", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0


if __name__ == "__main__":
    sys.exit(main())
