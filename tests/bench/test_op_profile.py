"""bench/op_profile.py: the generator cut into its parts, each timed under LiteRT and ONNX
Runtime (with and without its NCHWc layout). The script runs in its own process: it defines
absl flags that the trainer's tests define too."""

import re

PARTS = [
    "stem: pad 3 + conv 7x7",
    "down: conv 3x3 /2",
    "down: conv 3x3 /2",
    "block: pad 1 + conv 3x3",
    "of which pad 1 alone",
    "up: deconv 3x3 x2",
    "up: deconv 3x3 x2",
    "head: pad 3 + conv 7x7 + tanh",
    "norm + relu",
    "norm + relu",
    "norm + relu",
]


def test_the_profile_times_every_part_and_weights_the_sum_by_occurrence(run_module):
    args = ["--sizes=16", "--filters=4", "--blocks=2", "--runs=2", "--warmup=1", "--threads=1"]
    done = run_module("bench.op_profile", *args)
    assert re.search(r"^CPU: .+, int8 dot product: \S+", done.stdout, re.M), done.stdout
    # part, input, x n, GFLOP, litert ms, ort ms, ort -nchwc ms, ratios, GFLOP/s
    row = re.compile(
        r"^\s*(?P<part>\S.*?)\s{2,}(?P<input>\S+)\s+(?P<n>\S+)\s+(?P<gflop>\S+)\s+"
        r"(?P<litert>[\d.]+)\s+(?P<ort>[\d.]+)\s+(?P<nchwc>[\d.]+)\s+[\d.]+x\s+[\d.]+x",
        re.M,
    )
    rows = [m.groupdict() for m in row.finditer(done.stdout)]
    assert [r["part"] for r in rows] == [*PARTS, "sum of parts (x n)", "whole generator"]
    parts, total = rows[: len(PARTS)], rows[len(PARTS)]
    counts = [int(r["n"]) for r in parts]
    # 2 blocks: 4 convolutions; norms after the stem and each up (2 at full size) ...
    assert counts == [1, 1, 1, 4, 0, 1, 1, 1, 2, 2, 5]
    for runtime in ("litert", "ort", "nchwc"):
        weighted = sum(int(r["n"]) * float(r[runtime]) for r in parts)
        rounding = 0.005 * (sum(counts) + 1)  # each figure is printed to 0.01 ms
        assert abs(weighted - float(total[runtime])) <= rounding, (runtime, done.stdout)
