"""bench/curve.py: a run's figures at every kept checkpoint, drawn against the step."""

import json
import os
import shutil

from PIL import Image


def test_every_kept_checkpoint_is_scored_once_and_the_runs_own_report_stays_final(
    smoke_cyclegan, run_module, tmp_path
):
    model_dir = str(tmp_path / "run")
    shutil.copytree(smoke_cyclegan, model_dir)
    chart = tmp_path / "charts" / "cyclegan.png"
    args = [f"--model_dir={model_dir}", f"--output={chart}", "--title=cyclegan: smoke"]

    proc = run_module("bench.curve", *args, timeout=600)
    assert "curve: step 2 scored (1/1" in proc.stdout, proc.stdout[-2000:]
    data = json.loads(chart.with_suffix(".json").read_text())
    assert data["steps"] == [2, 4] and data["kind"] == "fraction"
    expected = {f"{d} {f}" for d in ("a2b", "b2a") for f in ("transfer accuracy", "domain score")}
    assert set(data["series"]) == expected
    assert all(len(v) == 2 and all(0 <= x <= 1 for x in v) for v in data["series"].values())
    # The last point is the run's own final report, which the earlier step did not replace.
    with open(os.path.join(model_dir, "metrics.json"), encoding="utf-8") as f:
        final = json.load(f)
    assert final["step"] == 4
    assert (
        data["series"]["b2a transfer accuracy"][1]
        == final["directions"]["b2a"]["transfer_accuracy"]
    )
    with open(
        os.path.join(model_dir, "curve", "step_000002", "metrics.json"), encoding="utf-8"
    ) as f:
        assert json.load(f)["step"] == 2
    with Image.open(chart) as image:
        assert image.format == "PNG" and image.size == (640, 380)

    # Again: the scored step is read back, not evaluated a second time.
    proc = run_module("bench.curve", *args, timeout=600)
    assert "scored" not in proc.stdout
    assert json.loads(chart.with_suffix(".json").read_text()) == data


def test_a_generator_without_fractions_is_charted_by_its_digit_fid(run_module, tmp_path):
    model_dir = tmp_path / "gan"
    model_dir.mkdir()
    metrics = {"step": 7, "directions": {}, "generated": {"generate": {"fid": 76.5}}}
    (model_dir / "metrics.json").write_text(json.dumps(metrics))
    chart = tmp_path / "gan.png"
    run_module("bench.curve", f"--model_dir={model_dir}", f"--output={chart}")
    data = json.loads(chart.with_suffix(".json").read_text())
    assert data == {"kind": "fid", "series": {"generate digit FID": [76.5]}, "steps": [7]}
    assert chart.exists()


def test_a_run_without_a_report_is_named(run_module, tmp_path):
    proc = run_module(
        "bench.curve", f"--model_dir={tmp_path}", f"--output={tmp_path / 'c.png'}", check=False
    )
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert errors and "has no metrics.json" in errors[0], proc.stderr[-2000:]
