"""bench/export_latency.py: the table of every exported variant's latency, and the CPU line
that says which kind of CPU the figures are from (int8 runs several times faster than float
with int8 dot-product instructions and no faster without them). The script runs in its own
process: it defines absl flags that the trainer's tests define too."""

import re


def test_cpu_description_names_the_int8_dot_product_instructions(tmp_path):
    from export.runtime import cpu_description as describe

    x86 = tmp_path / "x86"
    x86.write_text(
        "processor\t: 0\nmodel name\t: Xeon 8375C\nflags\t\t: fpu avx2 avx512f avx512_vnni\n\n"
        "processor\t: 1\nmodel name\t: Xeon 8375C\nflags\t\t: fpu avx2 avx512f avx512_vnni\n"
    )
    assert describe(str(x86)) == "Xeon 8375C, int8 dot product: avx512_vnni"
    old = tmp_path / "old"
    old.write_text("model name\t: Xeon @ 2.50GHz\nflags\t\t: fpu avx2 avx512f avx512bw\n")
    assert describe(str(old)) == "Xeon @ 2.50GHz, int8 dot product: none"
    arm = tmp_path / "arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd asimddp\nHardware\t: Tensor G3\n")
    assert describe(str(arm)) == "Tensor G3, int8 dot product: asimddp"
    assert describe(str(tmp_path / "missing")).endswith("int8 dot product: none")


def test_the_benchmark_prints_a_row_per_variant_and_the_cpu(run_module):
    args = ["--sizes=16", "--filters=4", "--blocks=1", "--runs=2", "--warmup=1", "--threads=1"]
    done = run_module("bench.export_latency", *args)
    assert re.search(r"^CPU: .+, int8 dot product: \S+", done.stdout, re.M), done.stdout
    rows = re.findall(r"^(a2b\S*\.(?:tflite|onnx))\s", done.stdout, re.M)
    want = ["a2b.tflite", "a2b_fp16.tflite", "a2b_int8.tflite", "a2b_int8_full.tflite"]
    assert rows == [*want, "a2b.onnx", "a2b_int8.onnx"], done.stdout
