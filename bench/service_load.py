"""Load test of the translation service on 127.0.0.1: throughput and p50/p99 latency.

    python bench/service_load.py --model=DIR/export/a2b.onnx [--requests=400] [--concurrency=8]
        [--duration=60] [--threads=N] [--target_domain=NAME] [--image_side=N|max] [--json]
    python bench/service_load.py --model=DIR/export --precisions=fp32,int8 --workers=1,2 \
        --threads=1,2                   # one row per variant x workers x threads, in one run
    python bench/service_load.py --url=http://127.0.0.1:8000 ...   # a service already running

``--model=DIR/export`` with ``--precisions`` serves each ONNX variant of ``--path`` in turn
(``<path>.onnx``, ``<path>_int8.onnx``); ``--workers`` and ``--threads`` take lists too, so
one run compares a bounded worker pool (requests run at once) with session threads (threads
per request) on the same machine, and prints a table.

With --model it starts ``python -m mobile_demo.service`` on a free loopback port, waits for
/healthz, sends ``--requests`` POST /translate requests (PNG bodies at the model's size) from
``--concurrency`` clients with keep-alive connections, stops after ``--duration`` seconds at the
latest, and stops the service. A request fails unless it gets 200 with a PNG body. Prints the
figures (and a JSON line with --json); exits 1 if any request failed.

--image_side sets the side of the square PNG sent (default: the model's size; ``max``: the
largest square the service decodes at its default --max_pixels, the memory worst case). With
--model the service's peak resident memory (Linux VmHWM) is reported as ``peak_rss_mb``.
"""

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_service(model, threads=None, timeout=90, workers=None):
    """Starts the service in a subprocess; returns (process, base url)."""
    import httpx

    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "mobile_demo.service",
        f"--model={model}",
        "--host=127.0.0.1",
        f"--port={port}",
    ]
    if threads:
        cmd.append(f"--threads={threads}")
    if workers:
        cmd.append(f"--workers={workers}")
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the service exited with {proc.returncode}: {proc.stderr.read()}")
        try:
            if httpx.get(url + "/healthz", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stop_service(proc)
    raise RuntimeError(f"the service did not answer /healthz within {timeout} s")


def stop_service(proc):
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def peak_rss_mb(pid):
    """Peak resident memory of process ``pid`` in MB (Linux), or None elsewhere."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def sample_png(size, seed=0):
    """A size x size RGB PNG: noise at model sizes, a noisy gradient (small body, every pixel
    decoded) at large ones."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    if size <= 256:
        pixels = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    else:
        ramp = np.linspace(0, 255, size, dtype=np.float32)
        pixels = np.stack(
            [
                ramp[None, :] + 0 * ramp[:, None],
                ramp[:, None] + 0 * ramp[None, :],
                np.full((size, size), 128, np.float32),
            ],
            -1,
        )
        pixels = (pixels + rng.integers(0, 4, (size, size, 1))).clip(0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def run_load(url, body, requests=400, concurrency=8, duration=60.0, target_domain=None):
    """Sends up to ``requests`` POSTs from ``concurrency`` threads within ``duration`` s."""
    import httpx

    params = {"target_domain": target_domain} if target_domain else None
    lock = threading.Lock()
    issued = 0
    latencies, failures = [], []
    deadline = time.monotonic() + duration

    def client_loop():
        nonlocal issued
        with httpx.Client(base_url=url, timeout=30.0) as client:
            while True:
                with lock:
                    if issued >= requests or time.monotonic() >= deadline:
                        return
                    issued += 1
                t0 = time.perf_counter()
                try:
                    r = client.post(
                        "/translate",
                        content=body,
                        params=params,
                        headers={"Content-Type": "image/png"},
                    )
                    ok = r.status_code == 200 and r.content.startswith(PNG_MAGIC)
                    error = None if ok else f"HTTP {r.status_code}: {r.text[:200]}"
                except httpx.HTTPError as e:
                    error = f"{type(e).__name__}: {e}"
                ms = (time.perf_counter() - t0) * 1000.0
                with lock:
                    if error is None:
                        latencies.append(ms)
                    else:
                        failures.append(error)

    threads = [threading.Thread(target=client_loop) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return {
        "requests": len(latencies) + len(failures),
        "ok": len(latencies),
        "failures": len(failures),
        "failure_examples": failures[:5],
        "concurrency": concurrency,
        "wall_s": wall,
        "throughput_rps": len(latencies) / wall if wall > 0 else 0.0,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "mean_ms": float(lat.mean()),
    }


def _ints(text):
    return [int(v) for v in text.split(",") if v.strip()] if text else [None]


def configurations(args):
    """[(model file, workers, threads)] to run, one service each."""
    from export.runtime import resolve_model

    if os.path.isdir(args.model):
        precisions = args.precisions.split(",") if args.precisions else [None]
        models = [resolve_model(args.model, args.path, ("onnx",), p) for p in precisions]
    else:
        if args.precisions or args.path:
            raise ValueError("--precisions and --path need --model=DIR/export (a directory).")
        models = [args.model]
    return [(m, w, t) for m in models for w in _ints(args.workers) for t in _ints(args.threads)]


def one(url, args):
    """Warm-up, then the measured load; (result, health)."""
    import httpx

    health = httpx.get(url + "/healthz", timeout=10).json()
    domain = args.target_domain
    if domain is None and health.get("target_domains"):
        domain = health["target_domains"][0]
    side = health["image_size"]
    if args.image_side == "max":
        side = int(health["max_pixels"] ** 0.5)
    elif args.image_side:
        side = int(args.image_side)
    body = sample_png(side)
    warm = min(16, args.requests)
    run_load(url, body, warm, args.concurrency, args.duration, target_domain=domain)
    result = run_load(
        url, body, args.requests, args.concurrency, args.duration, target_domain=domain
    )
    result.update(model=health["model"], image_size=health["image_size"], image_side=side)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--model", help="start the service on this .onnx model or DIR/export")
    target.add_argument("--url", help="load an already running service")
    parser.add_argument("--path", default=None, help="path of --model=DIR/export")
    parser.add_argument(
        "--precisions", default=None, help="ONNX variants of --model=DIR/export, e.g. fp32,int8"
    )
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--duration", type=float, default=60.0, help="stop after this many s")
    parser.add_argument("--threads", default=None, help="service runtime threads (list)")
    parser.add_argument("--workers", default=None, help="service --workers (list)")
    parser.add_argument("--target_domain", default=None, help="default: the first one")
    parser.add_argument(
        "--image_side", default=None, help="side of the PNG sent: N pixels, or max (see above)"
    )
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    results = []
    try:
        runs = configurations(args) if args.model else [(None, None, None)]
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for model, workers, threads in runs:
        proc = None
        try:
            if model:
                proc, url = start_service(model, threads, workers=workers)
            else:
                url = args.url.rstrip("/")
            result = one(url, args)
            result["peak_rss_mb"] = peak_rss_mb(proc.pid) if proc is not None else None
        finally:
            if proc is not None:
                stop_service(proc)
        result.update(workers=workers, threads=threads)
        results.append(result)
        peak = result["peak_rss_mb"]
        side = result["image_side"]
        print(
            f"{result['model']} {result['image_size']}px, {result['concurrency']} clients"
            + (f", --workers={workers}" if workers else "")
            + (f", --threads={threads}" if threads else "")
            + f": {result['ok']}/{result['requests']} ok, {result['failures']} failed in "
            f"{result['wall_s']:.2f} s; throughput {result['throughput_rps']:.1f} req/s; "
            f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms; {side}x{side} PNGs"
            + (f"; service peak RSS {peak:.0f} MB" if peak else ""),
            flush=True,
        )
        for example in result["failure_examples"]:
            print(f"  failure: {example}")
    if len(results) > 1:
        base = results[0]["throughput_rps"]
        print(
            f"\n{'model':<28}{'workers':>8}{'threads':>8}{'req/s':>8}{'vs first':>9}"
            f"{'p50 ms':>9}{'p99 ms':>9}{'RSS MB':>8}"
        )
        for r in results:
            rss = f"{r['peak_rss_mb']:.0f}" if r["peak_rss_mb"] else "-"
            print(
                f"{os.path.basename(r['model']):<28}{r['workers'] or '-':>8}"
                f"{r['threads'] or '-':>8}{r['throughput_rps']:>8.1f}"
                f"{r['throughput_rps'] / base if base else 0:>8.2f}x"
                f"{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{rss:>8}"
            )
    if args.json:
        print(json.dumps(results[0] if len(results) == 1 else results))
    return 1 if any(r["failures"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
