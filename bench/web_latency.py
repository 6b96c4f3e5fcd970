"""The browser's own latency of every ONNX variant of a path, in headless Chromium.

    python bench/web_latency.py                                   # untrained reference generator
    python bench/web_latency.py --export_dir=runs/unit_digits/export --path=b2a
    python bench/web_latency.py --size=64 --runs=10

Serves the export with ``mobile_demo.serve_web`` (cross-origin isolated, so onnxruntime-web may
use WebAssembly threads), opens the demo page in headless Chromium, picks ``--path`` and calls
the page's ``demo.benchmark(runs)``: each ONNX variant (``<path>.onnx``, the static int8
``<path>_int8.onnx``) in its own WebAssembly session, the median of ``--runs`` calls after 2
untimed ones. Prints a table with the ratio to fp32 (< 1 = faster), which variant the page
preselects, and the page's own quick timing at load that chose it. Without ``--export_dir`` it exports an untrained CycleGAN generator (``--size`` px,
6 residual blocks, ``--filters``) to ONNX fp32 and int8 first.

Needs Chromium (``CHROMIUM_PATH`` or ``chromium`` on PATH), the Python package playwright and
onnxruntime-web (``mobile_demo/web/install_vendor.sh``).
"""

import argparse
import os
import shutil
import sys
import tempfile
import threading

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def export_reference(root, size, filters, blocks=6):
    """Exports an untrained CycleGAN generator's ``a2b`` to ONNX fp32 and static int8."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from export import api
    from export import metadata as metadata_lib
    from trainer.networks import resnet_generator

    keras.utils.set_random_seed(0)
    model = resnet_generator(size, filters=filters, n_blocks=blocks, name="gen_ab")
    api.export_paths(
        {"a2b": model},
        root,
        formats=("onnx", "onnx_int8"),
        run=metadata_lib.run_fields("cyclegan", 0, None, size, []),
        allow_parity_failure=True,
        print_table=False,
    )
    return root


def measure(export_dir, path=None, runs=10, chromium=None):
    """[{file, precision, status, median_ms}] from the page, and the file it preselects."""
    from playwright.sync_api import sync_playwright

    from mobile_demo import serve_web

    if not serve_web.vendor_installed():
        raise RuntimeError(f"onnxruntime-web is not installed: {serve_web.INSTALL_HINT}")
    exe = chromium or os.environ.get("CHROMIUM_PATH") or shutil.which("chromium")
    if not exe:
        raise RuntimeError("Chromium not found: install it or set CHROMIUM_PATH.")
    srv = serve_web.make_server(str(export_dir), port=0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=exe, headless=True, args=list(serve_web.HEADLESS_CHROMIUM_FLAGS)
            )
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{srv.server_address[1]}/")
            page.wait_for_function(
                "window.demo && ['ready', 'error', 'unavailable'].includes(window.demo.state)",
                timeout=120000,
            )
            state = page.evaluate("[window.demo.state, window.demo.error]")
            if state[0] != "ready":
                raise RuntimeError(f"the page is {state[0]}: {state[1]}")
            preselected = page.eval_on_selector("#model", "s => s.value")
            at_load = page.evaluate("window.demo.variantTimes") or []
            if path:
                files = page.eval_on_selector_all("#model option", "els => els.map(e => e.value)")
                ours = [f for f in files if f == f"{path}.onnx" or f.startswith(f"{path}_")]
                if not ours:
                    raise ValueError(f"--path={path}: the page lists {', '.join(files)}.")
                page.select_option("#model", ours[0])
                page.wait_for_function("window.demo.state !== 'loading'")
            figures = page.evaluate(f"window.demo.benchmark({int(runs)})", [])
            threads = page.evaluate("ort.env.wasm.numThreads")
            browser.close()
    finally:
        srv.shutdown()
        srv.server_close()
    return figures, preselected, threads, at_load


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export_dir", default=None, help="DIR/export (default: see above)")
    parser.add_argument("--path", default=None, help="path to time (default: the page's first)")
    parser.add_argument("--size", type=int, default=128, help="untrained generator's size")
    parser.add_argument("--filters", type=int, default=64, help="untrained generator's width")
    parser.add_argument("--runs", type=int, default=10, help="timed calls per variant")
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
            export_dir = args.export_dir
            label = export_dir
            if export_dir is None:
                print(f"exporting an untrained CycleGAN generator at {args.size} px ...")
                export_dir = export_reference(os.path.join(tmp, "export"), args.size, args.filters)
                label = f"untrained CycleGAN generator @ {args.size}px"
            figures, preselected, threads, at_load = measure(export_dir, args.path, args.runs)
    except (RuntimeError, ValueError, FileNotFoundError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    base = next((f["median_ms"] for f in figures if f["precision"] == "fp32"), None)
    print(f"\n== {label}: onnxruntime-web (WebAssembly, {threads} threads), headless Chromium")
    print(f"{'artifact':<22}{'precision':<11}{'median ms':>10}{'vs fp32':>9}  status")
    for f in figures:
        ratio = f"{f['median_ms'] / base:.2f}x" if base else "-"
        mark = "  <- preselected" if f["file"] == preselected else ""
        print(
            f"{f['file']:<22}{f['precision']:<11}{f['median_ms']:>10.1f}{ratio:>9}  "
            f"{f.get('status') or ''}{mark}"
        )
    if at_load:
        timed = ", ".join(f"{f['file']} {f['median_ms']:.1f} ms" for f in at_load)
        print(f"page's own timing at load (2 calls each): {timed}; preselected {preselected}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
