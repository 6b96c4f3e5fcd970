"""An export is a transaction: DIR/export is the old complete set or the new one."""

import json
import os
import socket
import subprocess
import sys
import time

import keras
import pytest

from export import api, transaction
from export import metadata as metadata_lib
from trainer import locks
from trainer.methods import paths

from .conftest import SIZE, tiny_generator


@pytest.fixture(scope="module")
def two_paths():
    keras.utils.set_random_seed(0)
    return {
        "a2b": paths.image_path(tiny_generator(name="gen_ab"), "a", "b", "G_ab"),
        "b2a": paths.image_path(tiny_generator(name="gen_ba"), "b", "a", "G_ba"),
    }


def export(paths_, export_dir, step, formats="onnx"):
    run = metadata_lib.run_fields("toy", step, f"checkpoints/ckpt-{step}", SIZE, ["a", "b"])
    return api.export_paths(paths_, str(export_dir), formats=formats, run=run, print_table=False)


def assert_consistent(export_dir, step=None):
    """metadata.json describes exactly the files beside it, all of one step."""
    meta = metadata_lib.read_metadata(str(export_dir))
    files = {a["file"] for a in meta["artifacts"] if a.get("status") != "not supported"}
    on_disk = {f for f in os.listdir(export_dir) if not f.startswith(".")}
    assert on_disk == files | {metadata_lib.METADATA_FILE}
    assert {a["step"] for a in meta["artifacts"]} == {meta["step"]}
    if step is not None:
        assert meta["step"] == step
    return meta


def strays(export_dir):
    parent = os.path.dirname(str(export_dir))
    return sorted(n for n in os.listdir(parent) if n.startswith(".export."))


def test_sets_are_swapped_whole_and_strays_cleaned(tmp_path, two_paths):
    export_dir = tmp_path / "export"
    export(two_paths, export_dir, 4)
    assert os.path.islink(export_dir)
    first = os.path.realpath(export_dir)
    assert_consistent(export_dir, 4)

    # Re-exporting one path of the same checkpoint carries the other into the new set.
    export({"a2b": two_paths["a2b"]}, export_dir, 4, formats="keras")
    meta = assert_consistent(export_dir, 4)
    assert [a["file"] for a in meta["artifacts"]] == ["a2b.keras", "a2b.onnx", "b2a.onnx"]
    assert os.path.realpath(export_dir) != first
    assert meta["paths"]["b2a"]["source_domain"] == "b"

    # A new checkpoint: the other path's artifacts of step 4 are not carried.
    # Leftovers of a killed export (a dead process's build dir) go at the next export.
    dead = tmp_path / ".export.999999999.abc"
    dead.mkdir()
    (dead / "a2b.onnx").write_bytes(b"half")
    export({"a2b": two_paths["a2b"]}, export_dir, 8)
    meta = assert_consistent(export_dir, 8)
    assert [a["file"] for a in meta["artifacts"]] == ["a2b.onnx"]
    assert not dead.exists() and not os.path.exists(first)
    # Only the current set and the one it replaced remain.
    assert len(strays(export_dir)) == 2


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A second exporting process, stopped inside its transaction: it prints its build directory
# once it holds the export lock, then waits.
HOLDER = """
import sys
from export import transaction
tx = transaction.Transaction(sys.argv[1])
print(tx.build_dir, flush=True)
sys.stdin.read()
"""


def _python(*args, **kwargs):
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, text=True, **kwargs)


def test_a_second_export_is_refused_naming_the_first_and_a_killed_ones_lock_is_taken_over(
    tmp_path, two_paths
):
    export_dir = tmp_path / "export"
    export(two_paths, export_dir, 4)
    before = os.path.realpath(export_dir)
    holder = _python(
        "-c", HOLDER, str(export_dir), "--marker", stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        build = holder.stdout.readline().strip()  # the holder is inside its transaction
        assert os.path.isdir(build), build
        with pytest.raises(locks.DirInUseError) as err:
            export(two_paths, export_dir, 8)
        text = str(err.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in text
        assert "--marker" in text and "started 20" in text and "export.lock" in text
        # The refused export changed nothing: the old set, and the holder's build untouched.
        assert os.path.realpath(export_dir) == before
        assert_consistent(export_dir, 4)
        assert os.path.isdir(build)
    finally:
        holder.kill()
        holder.wait()
    lock_file = str(export_dir) + ".lock"
    assert json.loads(open(lock_file).read())["pid"] == holder.pid
    # The next export takes over the killed holder's lock and removes its half-built set.
    export(two_paths, export_dir, 8)
    assert_consistent(export_dir, 8)
    assert not os.path.exists(build)
    assert not os.path.exists(lock_file)


def test_an_export_while_a_trainer_writes_checkpoints_is_one_complete_set(
    digits_data_dir, tmp_path
):
    """The trainer keeps saving (and rotating) checkpoints during the export: the export reads
    the newest readable one, and its set is of that one step throughout."""
    import onnx

    model_dir = tmp_path / "run"
    trainer = _python(
        "-m",
        "trainer.main",
        "--flagfile=smoke.flags",
        "--method=cyclegan",
        "--gen_blocks=1",
        "--disc_layers=2",
        f"--data_dir={digits_data_dir}",
        f"--model_dir={model_dir}",
        "--train_steps=100000",
        "--checkpoint_every=2",
        "--keep_checkpoints=2",
        "--sample_every=0",
        "--eval_every=0",
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    state = model_dir / "checkpoints" / "checkpoint"
    try:
        deadline = time.monotonic() + 300
        while not state.exists():  # the first committed checkpoint
            assert trainer.poll() is None, "the trainer ended"
            assert time.monotonic() < deadline, "no checkpoint within 300 s"
            time.sleep(0.05)
        result = api.export_model_dir(str(model_dir), formats=("onnx",))
        assert trainer.poll() is None  # still training: it held MODEL_DIR/lock throughout
        assert (model_dir / "lock").exists()
    finally:
        trainer.kill()
        trainer.wait()
    export_dir = model_dir / "export"
    meta = assert_consistent(export_dir)
    assert meta["step"] >= 2 and meta["checkpoint"].endswith(f"ckpt-{meta['step']}")
    for a in meta["artifacts"]:
        props = {p.key: p.value for p in onnx.load(str(export_dir / a["file"])).metadata_props}
        assert props["step"] == str(meta["step"])
    assert result["failed"] == 0


def test_a_failed_export_leaves_the_old_set(tmp_path, two_paths, monkeypatch):
    export_dir = tmp_path / "export"
    export(two_paths, export_dir, 4)
    before = os.path.realpath(export_dir)

    def broken(*args):
        raise RuntimeError("disk gone")

    monkeypatch.setattr(metadata_lib, "write_metadata", broken)
    with pytest.raises(RuntimeError, match="disk gone"):
        export(two_paths, export_dir, 8)
    assert os.path.realpath(export_dir) == before
    assert_consistent(export_dir, 4)
    assert strays(export_dir) == [os.path.basename(before)]  # the build dir is gone


def test_plain_directory_is_replaced_and_foreign_files_refused(tmp_path, two_paths):
    export_dir = tmp_path / "export"
    export_dir.mkdir()
    (export_dir / "a2b.onnx").write_bytes(b"from an older tool")
    (export_dir / ".savedmodel-x").mkdir()
    export({"a2b": two_paths["a2b"]}, export_dir, 4)
    assert os.path.islink(export_dir)
    assert_consistent(export_dir, 4)

    other = tmp_path / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match=r"holds files that no export wrote \(notes.txt\)"):
        export({"a2b": two_paths["a2b"]}, other, 4)
    assert (other / "notes.txt").read_text() == "keep me"


def test_unwritable_export_dir_is_named(tmp_path, two_paths):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match="Cannot write the export to .*choose a writable"):
        export({"a2b": two_paths["a2b"]}, blocker / "export", 4)


def test_remote_export_dir(two_paths):
    """ram:// (a TensorFlow file system that is not the local one): built locally, copied."""
    import tensorflow as tf

    export_dir = "ram://transaction_test/run/export"
    export(two_paths, export_dir, 4, formats="onnx,savedmodel")
    gfile = tf.io.gfile
    meta = json.loads(gfile.GFile(f"{export_dir}/metadata.json").read())
    files = {a["file"] for a in meta["artifacts"]}
    assert files == {"a2b.onnx", "b2a.onnx", "a2b_savedmodel", "b2a_savedmodel"}
    for f in files:
        assert gfile.exists(f"{export_dir}/{f}"), f
    assert gfile.exists(f"{export_dir}/a2b_savedmodel/saved_model.pb")
    # A new checkpoint of one path: the other path's stale files are deleted after.
    export({"a2b": two_paths["a2b"]}, export_dir, 8)
    meta = json.loads(gfile.GFile(f"{export_dir}/metadata.json").read())
    assert [a["file"] for a in meta["artifacts"]] == ["a2b.onnx"] and meta["step"] == 8
    assert not gfile.exists(f"{export_dir}/b2a.onnx")
    assert not gfile.exists(f"{export_dir}/a2b_savedmodel")
    assert transaction.is_remote(export_dir)
