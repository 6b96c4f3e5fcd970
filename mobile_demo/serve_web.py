"""Serves the browser demo, its onnxruntime-web files and an export directory on localhost.

    python -m mobile_demo.serve_web --export_dir=DIR/export [--port=8080] [--host=127.0.0.1]

Routes: ``/`` (the page), ``/app.js``, ``/vendor/*`` (onnxruntime-web, installed by
``mobile_demo/web/install_vendor.sh``), ``/samples/*`` (bundled digits) and ``/export/*``
(``metadata.json`` and the ``.onnx`` files of DIR). The page is served cross-origin isolated
(COOP/COEP headers) so onnxruntime-web may use WebAssembly threads.
"""

import argparse
import http.server
import os
import sys
import urllib.parse

WEB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "web")
VENDOR_DIR = os.path.join(WEB_DIR, "vendor")
INSTALL_HINT = "run mobile_demo/web/install_vendor.sh (needs Node.js and npm)"

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".wasm": "application/wasm",
    ".json": "application/json",
    ".png": "image/png",
    ".onnx": "application/octet-stream",
}
# Only these files are served from the export directory (not checkpoints or anything else).
_EXPORT_SUFFIXES = (".onnx", ".json", ".png")


def vendor_installed():
    return os.path.isfile(os.path.join(VENDOR_DIR, "ort.wasm.min.js"))


def _resolve(root, relative):
    """Path of ``relative`` inside ``root``, or None when it would leave ``root``."""
    root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(root, relative))
    if os.path.commonpath([root, path]) != root or not os.path.isfile(path):
        return None
    return path


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "img2img-web-demo"
    export_dir = None  # set per server by make_server

    def log_message(self, format, *args):  # noqa: A002 - signature from the base class
        if self.server.verbose:
            super().log_message(format, *args)

    def _file_for(self, url_path):
        parts = url_path.lstrip("/")
        if parts in ("", "index.html"):
            return os.path.join(WEB_DIR, "index.html")
        if parts == "app.js":
            return os.path.join(WEB_DIR, "app.js")
        prefix, _, rest = parts.partition("/")
        if prefix == "vendor":
            return _resolve(VENDOR_DIR, rest)
        if prefix == "samples":
            return _resolve(os.path.join(WEB_DIR, "samples"), rest)
        if prefix == "export" and rest.endswith(_EXPORT_SUFFIXES):
            return _resolve(self.server.export_dir, rest)
        return None

    def _error(self, status, body, head_only):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def _send(self, head_only):
        url_path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        if "\0" in url_path or "\0" in self.path:
            # os.path refuses NUL bytes with ValueError: a bad request, not a server error.
            return self._error(400, b"bad request: the URL holds a NUL byte\n", head_only)
        path = self._file_for(url_path)
        if path is None:
            body = b"not found\n"
            if url_path.startswith("/vendor/") and not vendor_installed():
                body = f"onnxruntime-web is not installed: {INSTALL_HINT}\n".encode()
            return self._error(404, body, head_only)
        with open(path, "rb") as f:
            body = f.read()
        self.send_response(200)
        ctype = _TYPES.get(os.path.splitext(path)[1], "application/octet-stream")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if not head_only:
            self.wfile.write(body)

    def do_GET(self):  # noqa: N802 - http.server naming
        self._send(head_only=False)

    def do_HEAD(self):  # noqa: N802 - http.server naming
        self._send(head_only=True)


# Flags to open the page in headless Chromium on a closed network (the tests and
# bench/web_latency.py): without the background-networking ones Chromium keeps trying to reach
# hosts the network refuses.
HEADLESS_CHROMIUM_FLAGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


def make_server(export_dir, host="127.0.0.1", port=8080, verbose=False):
    """A ThreadingHTTPServer for the page and ``export_dir`` (port 0 picks a free port)."""
    export_dir = os.path.abspath(export_dir)
    if not os.path.isfile(os.path.join(export_dir, "metadata.json")):
        raise FileNotFoundError(
            f"{export_dir} has no metadata.json; pass the export directory the export stage "
            "wrote (e.g. --export_dir=MODEL_DIR/export)"
        )
    server = http.server.ThreadingHTTPServer((host, port), _Handler)
    server.daemon_threads = True
    server.export_dir = export_dir
    server.verbose = verbose
    return server


def port_number(text):
    """argparse type of --port: an integer in 0..65535 (0 picks a free port)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port: use 0..65535 (0 = any free one)")
    return port


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export_dir", required=True, help="directory holding metadata.json")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=port_number, default=8080, help="port (0 picks a free one)")
    parser.add_argument("--quiet", action="store_true", help="do not log requests")
    args = parser.parse_args(argv)
    try:
        server = make_server(args.export_dir, args.host, args.port, verbose=not args.quiet)
    except (FileNotFoundError, ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not vendor_installed():
        print(f"warning: onnxruntime-web is not installed; {INSTALL_HINT}", file=sys.stderr)
    host, port = server.server_address[:2]
    print(f"Serving the demo for {server.export_dir} at http://{host}:{port}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
