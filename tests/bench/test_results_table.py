"""bench/results.py fills RESULTS.md's table one run at a time: a run adds or replaces its own
row (with date and command) and keeps every other row and every hand-written section."""

import json
import os
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def fake_run(work_dir, method, steps, accuracy):
    """A finished run as bench/results.py --skip_trained reuses it: metrics.json, train log."""
    model_dir = os.path.join(work_dir, method)
    os.makedirs(model_dir)
    direction = {"transfer_accuracy": accuracy, "domain_score": 0.99, "fid": 12.5, "kid": 0.1}
    direction["kid_std"] = 0.01
    noisy = [{"stddev": 0.05, "gain": 1.25}]
    metrics = {
        "step": steps,
        "domains": {"a": "mnist", "b": "mnist_m"},
        "directions": {"a2b": direction, "b2a": direction},
        "baselines": {"a2b": {"identity_accuracy": 0.5, "identity_domain_score": 0.01}},
        "classifiers": {"mnist": {"test_accuracy": 0.98}},
        "notes": [],
        "uda": None,
        "steganography": {"a2b": {"noisy": noisy}, "b2a": {"noisy": noisy}},
    }
    with open(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    with open(os.path.join(model_dir, "bench_train.log"), "w") as f:
        f.write(f"Trained to step {steps} in 42.0 s\n")


def results(tmp_path, method, steps, select="methods"):
    proc = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "bench", "results.py"),
            f"--{select}={method}",
            f"--train_steps={steps}",
            "--skip_trained",
            f"--work_dir={tmp_path / 'runs'}",
            f"--output={tmp_path / 'RESULTS.md'}",
            f"--rows={tmp_path / 'results.json'}",
            f"--charts_dir={tmp_path / 'charts'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return (tmp_path / "RESULTS.md").read_text()


def test_a_run_replaces_its_row_and_keeps_the_others_and_the_hand_written_sections(tmp_path):
    (tmp_path / "RESULTS.md").write_text(
        "# Results on the embedded digit domains\n\nIntro.\n\n## Edge performance\n\nKept.\n"
    )
    runs = tmp_path / "runs"
    fake_run(runs, "unit", 7, 0.812)
    fake_run(runs, "cyclegan", 9, 0.777)
    grid = runs / "unit" / "eval_samples" / "step_000007.png"
    grid.parent.mkdir()
    grid.write_bytes(b"a sample grid")
    results(tmp_path, "unit", 7)
    text = results(tmp_path, "cyclegan", 9)
    assert "## Edge performance\n\nKept." in text and text.index("Intro.") < text.index("| unit |")
    assert "| unit | mnist → mnist_m | 7 (of 1500) | 42 s | n/a | 0.812 (0.99)" in text
    assert "| cyclegan | mnist → mnist_m | 9 (of 1400) | 42 s | n/a | 0.777 (0.99)" in text
    assert "1.25 / 1.25" in text  # the steganography gain at noise 0.05, both cycles
    assert "`python -m trainer.main --flagfile=unit.flags --model_dir=" in text
    # The row links its curve and a copy of its final sample grid, relative to the table.
    assert "| [curve](charts/unit.png), [samples](charts/unit_samples.png) | " in text
    assert (tmp_path / "charts" / "unit_samples.png").read_bytes() == b"a sample grid"
    assert json.loads((tmp_path / "charts" / "unit.json").read_text())["steps"] == [7]
    assert "| [curve](charts/cyclegan.png) | " in text

    # unit again, with another figure: its row is replaced, cyclegan's kept, one table.
    shutil.rmtree(runs / "unit")
    fake_run(runs, "unit", 7, 0.905)
    text = results(tmp_path, "unit", 7)
    assert "0.905 (0.99)" in text and "0.812" not in text and "0.777 (0.99)" in text
    assert text.count("| unit |") == 1 and text.count("bench/results.py table: begin") == 1
    assert "## Edge performance\n\nKept." in text


def test_a_second_shipped_flagfile_is_a_row_of_its_own_with_its_wall_time(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "latent_explore_mnist_m", 5, 0.35)
    with open(runs / "latent_explore_mnist_m" / "bench_timing.json", "w") as f:
        json.dump({"train_seconds": 42.0, "wall_seconds": 61.0}, f)
    text = results(tmp_path, "latent_explore_mnist_m", 5, select="variants")
    row = "| latent_explore_mnist_m | mnist → mnist_m | 5 (of 7000) | 42 s | 61 s | 0.350 (0.99)"
    assert row in text
    assert "`python -m trainer.main --flagfile=latent_explore_mnist_m.flags --model_dir=" in text


def test_a_variant_with_flags_is_named_with_them_and_runs_in_a_bracket_free_model_dir(tmp_path):
    # TensorFlow opens checkpoints by file pattern: a model_dir named cyclegan[...] would train
    # and then fail to restore, so the run's directory spells the flags without brackets.
    fake_run(tmp_path / "runs", "cyclegan+ablation=gan_only+domain_b=digits", 5, 0.42)
    text = results(tmp_path, "cyclegan:ablation=gan_only,domain_b=digits", 5, select="variants")
    assert "| cyclegan[ablation=gan_only,domain_b=digits] | mnist → mnist_m | 5 (of 1400) |" in text
    assert "--ablation=gan_only --domain_b=digits --model_dir=" in text
    assert "runs/cyclegan+ablation=gan_only+domain_b=digits --train_steps=5" in text
    # Every checkpoint is kept for the curve, and the curve is named like the run directory.
    assert "--keep_checkpoints=1000`" in text
    assert "[curve](charts/cyclegan+ablation=gan_only+domain_b=digits.png)" in text


def test_a_quantized_variant_below_its_bound_is_named_in_the_row_and_runs_are_strict(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs, "combogan", 3, 0.4)
    os.makedirs(runs / "combogan" / "export")
    parity = {"bound": {"psnr": 25.0}, "test_images": {"psnr": 24.967, "examples": 64}}
    parity.update(judged_on=["test_images"], passed=False)
    artifacts = [
        {"file": "mnist2digits.onnx", "format": "onnx", "status": "ok", "size_bytes": 10},
        {"file": "mnist_m2mnist_int8_full.tflite", "status": "below bound", "parity": parity},
    ]
    with open(runs / "combogan" / "export" / "metadata.json", "w") as f:
        json.dump({"artifacts": artifacts}, f)
    text = results(tmp_path, "combogan", 3)
    expected = "PSNR 24.97 dB on 64 test images, bound >= 25 dB"
    assert f"export: mnist_m2mnist_int8_full.tflite below bound ({expected})" in text
    # The recorded command is the one a user runs: a float32 parity miss would fail it.
    assert "--flagfile=combogan.flags --model_dir=" in text
    assert "--allow_parity_failure" not in text
