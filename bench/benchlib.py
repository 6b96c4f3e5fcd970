"""What the benchmark scripts share: the timing loop, the reference generator depth, and the
plain-text table they print. Imported from beside them (each script puts bench/ on the path)."""

import statistics
import time


def median_ms(fn, runs, warmup):
    """Median wall time of ``runs`` calls of ``fn`` after ``warmup`` untimed ones, in ms."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def reference_blocks(size):
    """Residual blocks of the CycleGAN reference generator at ``size``: 9 at >= 256 px, else 6."""
    return 9 if size >= 256 else 6


def print_table(table):
    """``table`` (a header row, then rows of strings) in left-aligned columns, a rule under
    the header."""
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for i, r in enumerate(table):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if i == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))
