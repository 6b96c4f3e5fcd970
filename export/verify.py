"""Parity: every artifact, run by its own runtime, against the Keras model it came from.

Figures per input set ("test_images": held-out images of the path's source domain;
"random": uniform inputs in the value range) and over all outputs: max and mean absolute
error, and PSNR in dB over the output value range (capped at ``PSNR_CAP`` for identical
outputs, so metadata.json stays plain JSON).

Bounds (``BOUNDS``): float32 artifacts (TFLite fp32, ONNX, .keras, SavedModel) must keep the
max abs error on [-1, 1] outputs within 1e-3 on every input set: an eighth of one 8-bit output
level (1/127.5), so the exported file writes the same image as Keras, and two orders below what
a wrong conversion costs. Not tighter: each runtime sums a convolution in its own order, and an
instance norm over a nearly flat feature map (the black background of a digit) divides that
rounding by a standard deviation near its epsilon; a trained 32 px UNIT whose TFLite and ONNX
files agree with Keras to a mean of 7e-6 has single pixels 1.5e-4 off. quantized TFLite variants are
judged by PSNR on the test images (on random inputs when no test images exist), since their
max error on a single pixel says little about the picture; at least ``QUANTIZED_EXAMPLES``
images make that figure stable. A quantized variant that misses its bound is ``BELOW_BOUND``
(reported, the export goes on); a float32 artifact that misses its bound is ``FAILED``.
"""

import math
import os
import statistics
import time

import numpy as np

from export import metadata as metadata_lib

BOUNDS = {
    "fp32": {"max_abs": 1e-3},
    "fp16": {"psnr": 40.0},
    "int8": {"psnr": 30.0},
    "int8_full": {"psnr": 25.0},
}
PSNR_CAP = 200.0
QUANTIZED = ("fp16", "int8", "int8_full")
# Quantized parity is judged on at least this many images: on 8, one run's 24.995 dB was the next
# run's 25.1 dB.
QUANTIZED_EXAMPLES = 64
TEST_SET, RANDOM_SET = "test_images", "random"
# Input values per runtime call when a feed set is run: 64 images of 256 px in one batch hold
# gigabytes of activations (a 9-block generator's 256 px export passed 20 GB), so a set runs
# in chunks of at most this many values (10 images of 256 px, 42 of 128 px, all 64 of 32 px).
CHUNK_VALUES = 2**21
# Single-example latency measured at export: timed calls after one untimed warm-up, at least
# LATENCY_MIN_RUNS and until LATENCY_MIN_S seconds are spent (at most LATENCY_MAX_RUNS): a few
# calls of a large model, a hundred of a small one whose single calls are noise.
LATENCY_MIN_RUNS, LATENCY_MAX_RUNS, LATENCY_MIN_S = 3, 100, 0.2
# CPU threads of the exported runtimes while they are checked and timed.
RUNNER_THREADS = 1
# The formats a deployed runtime chooses among, timed at export.
TIMED_FORMATS = ("tflite", "onnx")


def psnr(reference, other, value_range=2.0):
    mse = float(np.mean((np.asarray(reference, np.float64) - np.asarray(other, np.float64)) ** 2))
    if mse <= 0.0:
        return PSNR_CAP
    return float(min(PSNR_CAP, 10.0 * math.log10(value_range**2 / mse)))


def compare(reference, outputs, output_specs):
    """Errors of ``outputs`` vs ``reference`` (``{name: array}``), worst over all outputs."""
    max_abs, mean_abs, worst_psnr = 0.0, [], PSNR_CAP
    for spec in output_specs:
        name = spec["name"]
        if name not in outputs:
            raise ValueError(f"The artifact has no output {name!r} (it has {sorted(outputs)}).")
        ref = np.asarray(reference[name], np.float32)
        got = np.asarray(outputs[name], np.float32)
        if ref.shape != got.shape:
            raise ValueError(f"Output {name!r} has shape {got.shape}, Keras gives {ref.shape}.")
        if spec.get("value_range"):
            lo, hi = spec["value_range"]
            span = hi - lo
        else:
            span = float(ref.max() - ref.min()) or 1.0
        diff = np.abs(ref - got)
        max_abs = max(max_abs, float(diff.max()))
        mean_abs.append(float(diff.mean()))
        worst_psnr = min(worst_psnr, psnr(ref, got, span))
    return {"max_abs": max_abs, "mean_abs": float(np.mean(mean_abs)), "psnr": worst_psnr}


def make_feeds(input_specs, images=None, n=4, seed=0):
    """``{input name: float32 batch}`` for a path: ``images`` (already in the input's value
    range) or uniform random values in the value range for the image input, one-hot vectors
    cycling through the labels, noise drawn from the input's declared ``prior``."""
    rng = np.random.default_rng(seed)
    if images is not None:
        n = len(images)
    feeds = {}
    for spec in input_specs:
        shape = [n] + [d or 1 for d in spec["shape"][1:]]
        kind = spec["kind"]
        if kind == "image" and images is not None:
            feeds[spec["name"]] = np.asarray(images, np.float32)
        elif kind == "image":
            lo, hi = spec.get("value_range", metadata_lib.IMAGE_VALUE_RANGE)
            feeds[spec["name"]] = rng.uniform(lo, hi, shape).astype(np.float32)
        elif kind == "onehot":
            depth = shape[-1]
            feeds[spec["name"]] = np.eye(depth, dtype=np.float32)[np.arange(n) % depth]
        elif kind == "noise":
            feeds[spec["name"]] = metadata_lib.sample_prior(spec["prior"], shape, rng)
        else:
            raise ValueError(
                f"Input {spec['name']!r} is declared {kind!r}: parity checks can feed image, "
                "onehot and noise inputs; declare it as one of them."
            )
    return feeds


def runner(path, artifact):
    """A callable ``{input name: array} -> {output name: array}`` on ``artifact``'s runtime."""
    fmt = artifact["format"]
    if fmt in ("onnx", "tflite"):
        from export.runtime import Translator

        translator = Translator(path, metadata=artifact, threads=RUNNER_THREADS)
        return translator.run
    if fmt == "keras":
        import keras

        from export.graph import keras_outputs

        # safe_mode=True: what a user loading an untrusted file would do.
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
        out_names = [s["name"] for s in artifact["outputs"]]
        return lambda feeds: keras_outputs(model, feeds, out_names)
    if fmt == "savedmodel":
        import tensorflow as tf

        from export.graph import SERVING_KEY

        loaded = tf.saved_model.load(path)
        signature = loaded.signatures[SERVING_KEY]

        def run(feeds):
            outs = signature(**{k: tf.constant(v) for k, v in feeds.items()})
            return {k: v.numpy() for k, v in outs.items()}

        run.keep_alive = loaded  # the signature needs its object graph alive
        return run
    raise ValueError(f"No runtime for format {fmt!r}.")


def in_chunks(run, feeds, chunk_values=CHUNK_VALUES):
    """``run(feeds)`` (``{name: array}`` -> ``{name: array}``) over consecutive slices of the
    batch of at most ``chunk_values`` input values each, outputs concatenated in order."""
    n = len(next(iter(feeds.values())))
    per_example = max(int(np.prod(np.shape(v)[1:])) for v in feeds.values())
    size = max(1, chunk_values // max(1, per_example))
    if n <= size:
        return run(feeds)
    parts = [run({k: v[i : i + size] for k, v in feeds.items()}) for i in range(0, n, size)]
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def latency(run, feeds, threads=RUNNER_THREADS):
    """The median wall time of ``run`` on the first example of ``feeds`` (stored as
    ``artifact["latency"]``): what ``export.runtime.choose_artifact`` ranks variants by."""
    one = {k: np.asarray(v[:1]) for k, v in feeds.items()}
    run(one)  # warm-up: the first call allocates and packs weights
    times, spent = [], 0.0
    while len(times) < LATENCY_MIN_RUNS or (
        spent < LATENCY_MIN_S and len(times) < LATENCY_MAX_RUNS
    ):
        started = time.perf_counter()
        run(one)
        times.append(time.perf_counter() - started)
        spent += times[-1]
    return {
        "median_ms": round(statistics.median(times) * 1000.0, 3),
        "runs": len(times),
        "threads": threads,
        "batch": 1,
    }


def check(run, reference, feed_sets, artifact):
    """Parity figures of one artifact (stored as ``artifact["parity"]``).

    ``run``: the artifact's callable (see ``runner``); ``reference``: ``{set: {output: array}}``
    from Keras; ``feed_sets``: ``{set: feeds}``.
    """
    precision = artifact["precision"]
    bound = dict(BOUNDS[precision])
    parity = {"bound": bound}
    for set_name, feeds in feed_sets.items():
        outputs = in_chunks(run, feeds)
        parity[set_name] = compare(reference[set_name], outputs, artifact["outputs"])
        parity[set_name]["examples"] = len(next(iter(feeds.values())))
    if "max_abs" in bound:
        judged = list(feed_sets)
        passed = all(parity[s]["max_abs"] <= bound["max_abs"] for s in judged)
    else:
        judged = [TEST_SET] if TEST_SET in feed_sets else list(feed_sets)
        passed = all(parity[s]["psnr"] >= bound["psnr"] for s in judged)
    parity["judged_on"] = judged
    parity["passed"] = bool(passed)
    return parity


def verdict(artifact):
    """OK when parity passed; BELOW_BOUND for a quantized variant that missed its PSNR bound
    (it runs, it is just less faithful than promised); FAILED for a float32 artifact."""
    if artifact["parity"]["passed"]:
        return metadata_lib.OK
    if artifact["precision"] in QUANTIZED:
        return metadata_lib.BELOW_BOUND
    return metadata_lib.FAILED


def near_bound(x, bound, digits=1, max_digits=6):
    """``x`` with as many decimals as it takes to show which side of ``bound`` it is on:
    24.995 against 25 prints ``24.995``, never ``25.0``."""
    for d in range(digits, max_digits + 1):
        text = f"{x:.{d}f}"
        shown = float(text)
        if (shown >= bound) == (x >= bound) and (shown != bound or x == bound):
            return text
    return repr(float(x))


def _fmt_err(x, bound=None):
    if x is None:
        return "-"
    return _fmt_max(x, bound) if bound is not None else f"{x:.1e}"


def _fmt_psnr(x, bound=None):
    if x is None:
        return "-"
    if x >= PSNR_CAP:
        return "inf"
    return near_bound(x, bound) if bound is not None else f"{x:.1f}"


def _fmt_max(x, bound):
    """A max abs error in two significant digits, more when it rounds onto ``bound``."""
    for d in range(1, 6):
        text = f"{x:.{d}e}"
        shown = float(text)
        if (shown <= bound) == (x <= bound) and (shown != bound or x == bound):
            return text
    return repr(float(x))


def headline(artifact):
    """One short line per artifact, e.g. ``a2b.onnx  max|err| 2.1e-06  ok``."""
    name = artifact["file"]
    status = artifact.get("status", "?")
    parity = artifact.get("parity") or {}
    if status == metadata_lib.NOT_SUPPORTED:
        return f"{name}  not supported: {artifact.get('reason', '')}"[:160]
    if "error" in artifact:
        return f"{name}  {status}: {artifact['error']}"[:160]
    judged = parity.get("judged_on") or []
    if not judged:
        return f"{name}  {status}"
    examples = sum(parity[s].get("examples", 0) for s in judged)
    if "max_abs" in parity["bound"]:
        bound = parity["bound"]["max_abs"]
        worst = max(parity[s]["max_abs"] for s in judged)
        return f"{name}  max|err| {_fmt_max(worst, bound)}  {status}"
    bound = parity["bound"]["psnr"]
    worst = min(parity[s]["psnr"] for s in judged)
    line = f"{name}  PSNR {_fmt_psnr(worst, bound)} dB (bound >= {bound:g}, {examples} images)"
    if status == metadata_lib.BELOW_BOUND:
        return (
            f"{line}  BELOW BOUND: kept and marked in metadata.json; runtimes refuse it unless "
            "explicitly allowed"
        )
    return f"{line}  {status}"


def table(artifacts):
    """A fixed-width parity table of artifact entries, one row each."""
    header = (
        "artifact",
        "size",
        "latency",
        "test max|err|",
        "test PSNR",
        "rand max|err|",
        "rand PSNR",
        "bound",
        "status",
    )
    rows = []
    for a in artifacts:
        p = a.get("parity") or {}
        test, rand = p.get(TEST_SET, {}), p.get(RANDOM_SET, {})
        bound = p.get("bound", {})
        psnr_bound, max_bound = bound.get("psnr"), bound.get("max_abs")
        bound_text = (
            f"max<={bound['max_abs']:g}"
            if "max_abs" in bound
            else (f"PSNR>={bound['psnr']:g}" if bound else "-")
        )
        size = a.get("size_bytes")
        rows.append(
            (
                a["file"],
                "-" if size is None else _fmt_size(size),
                _fmt_latency(a.get("latency")),
                _fmt_err(test.get("max_abs"), max_bound),
                _fmt_psnr(test.get("psnr"), psnr_bound),
                _fmt_err(rand.get("max_abs"), max_bound),
                _fmt_psnr(rand.get("psnr"), psnr_bound),
                bound_text,
                _status_text(a.get("status", "?"))
                + (f" ({a['reason']})" if a.get("status") == metadata_lib.NOT_SUPPORTED else "")
                + (f" ({a['error']})" if a.get("error") else ""),
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for r in [header, *rows]:
        cells = [str(c).ljust(w) for c, w in zip(r[:-1], widths)]
        lines.append("  ".join(cells + [str(r[-1])[:120]]))
    lines.insert(1, "-" * min(160, len(lines[0]) + 10))
    return "\n".join(lines)


def _status_text(status):
    return "BELOW BOUND" if status == metadata_lib.BELOW_BOUND else status


def _fmt_latency(latency):
    ms = (latency or {}).get("median_ms")
    return "-" if ms is None else (f"{ms:.2f} ms" if ms < 10 else f"{ms:.0f} ms")


def _fmt_size(n):
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0
    return str(n)


def artifact_path(export_dir, artifact):
    return os.path.join(export_dir, artifact["file"])
