"""Checkpoints and the model dir, in process on smoke.flags shapes: fallback to the newest
readable checkpoint, one trainer per model dir, resume with another batch size, temporaries
left by kills, remote (ram://) model dirs, and the clear errors of a damaged model dir."""

import functools
import json
import os
import socket
import subprocess
import sys

import pytest
from absl import flags

from trainer import checkpoints, io_utils, train_lib
from trainer import flags as flags_lib

FLAGS = flags.FLAGS
flags_lib.define_method_flags()

SMOKE = ["--flagfile=smoke.flags", "--method=cyclegan", "--gen_blocks=1", "--disc_layers=2"]


def make_config(data_dir, model_dir, *args):
    FLAGS.unparse_flags()
    argv = flags_lib.resolve_flagfile_args(
        ["prog", *SMOKE, f"--data_dir={data_dir}", f"--model_dir={model_dir}", *args]
    )
    FLAGS(argv)
    try:
        return flags_lib.config_from_flags()
    finally:
        FLAGS.unparse_flags()


def train(data_dir, model_dir, *args):
    return train_lib.run(make_config(data_dir, model_dir, *args))


def steps_on_disk(model_dir):
    names = os.listdir(os.path.join(model_dir, "checkpoints"))
    return sorted(int(n[5:-6]) for n in names if n.startswith("ckpt-") and n.endswith(".index"))


@pytest.fixture(scope="module")
def trained_4(digits_data_dir, tmp_path_factory):
    """A run trained to step 4 (checkpoints 2 and 4), copied by the tests that damage it."""
    model_dir = tmp_path_factory.mktemp("ckpt") / "run"
    result = train(digits_data_dir, model_dir, "--train_steps=4", "--pool_size=2")
    assert result.step == 4
    return model_dir


@pytest.fixture
def run_copy(trained_4, tmp_path):
    import shutil

    target = tmp_path / "run"
    shutil.copytree(trained_4, target)
    return target


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(max(os.path.getsize(path) // 2, 1))


@pytest.mark.parametrize("damage", ["missing", "truncated_data", "truncated_index"])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_readable(
    digits_data_dir, run_copy, damage, caplog
):
    ckpt_dir = run_copy / "checkpoints"
    if damage == "missing":
        for name in os.listdir(ckpt_dir):
            if name.startswith("ckpt-4."):
                os.remove(ckpt_dir / name)
    elif damage == "truncated_data":
        _truncate(next(ckpt_dir / n for n in os.listdir(ckpt_dir) if n.startswith("ckpt-4.data")))
    else:
        _truncate(ckpt_dir / "ckpt-4.index")

    # load_trained (evaluate and export) falls back and says so.
    caplog.clear()
    trained = checkpoints.load_trained(str(run_copy))
    assert trained.step == 2 and trained.checkpoint.endswith("ckpt-2")
    assert "ckpt-4" in caplog.text and "using ckpt-2" in caplog.text

    # Training resumes from step 2 (not 0) and keeps ckpt-2 until newer ones exist.
    result = train(digits_data_dir, run_copy, "--train_steps=6", "--pool_size=2")
    assert result.step == 6
    assert {2, 4, 6} <= set(steps_on_disk(run_copy))
    assert checkpoints.find_readable(str(run_copy)).endswith("ckpt-6")


def test_keep_n_rotation_goes_on_over_the_checkpoints_from_before_a_resume(
    digits_data_dir, run_copy
):
    """A resumed run rotates the checkpoints it found as well as its own: 2 and 4 (from
    before the resume) go once newer ones exist, leaving --keep_checkpoints on disk."""
    assert steps_on_disk(run_copy) == [2, 4]
    train(digits_data_dir, run_copy, "--train_steps=10", "--pool_size=2", "--keep_checkpoints=3")
    assert steps_on_disk(run_copy) == [6, 8, 10]


def test_a_checkpoint_rotated_away_during_the_restore_is_replaced_by_the_newest(
    run_copy, monkeypatch
):
    """A trainer still writing the model dir deletes old checkpoints: one chosen by an export
    may vanish between the check and the restore."""
    real_restore = checkpoints.restore
    calls = []

    def rotate_then_restore(checkpoint, path, model_dir, partial=False):
        calls.append(os.path.basename(path))
        if len(calls) == 1:
            for name in os.listdir(run_copy / "checkpoints"):
                if name.startswith("ckpt-4."):
                    os.remove(run_copy / "checkpoints" / name)
        return real_restore(checkpoint, path, model_dir, partial)

    monkeypatch.setattr(checkpoints, "restore", rotate_then_restore)
    trained = checkpoints.load_trained(str(run_copy))
    assert calls == ["ckpt-4", "ckpt-2"]
    assert trained.step == 2 and trained.checkpoint.endswith("ckpt-2")


def test_a_checkpoint_that_vanishes_halfway_through_its_restore_leaves_nothing_pending(
    run_copy, monkeypatch
):
    """The rotation can also land while a restore is reading: TF keeps the half-read
    checkpoint's pending restores on the objects it was restoring into, so the retry must
    restore into fresh ones (it used to fail reading the vanished checkpoint again)."""
    real_restore = checkpoints.restore
    calls = []

    def read_then_rotate(checkpoint, path, model_dir, partial=False):
        calls.append(os.path.basename(path))
        if len(calls) == 1:
            # Read (the variables that exist, and pending restores for those that do not
            # yet), then the files go before the restore has finished.
            checkpoint.read(path).expect_partial()
            for name in os.listdir(run_copy / "checkpoints"):
                if name.startswith("ckpt-2."):
                    os.remove(run_copy / "checkpoints" / name)
            raise checkpoints.IncompatibleModelDirError("rotated away while it was read")
        return real_restore(checkpoint, path, model_dir, partial)

    monkeypatch.setattr(checkpoints, "restore", read_then_rotate)
    monkeypatch.setattr(checkpoints, "find_readable", _newest_after_oldest(run_copy))
    trained = checkpoints.load_trained(str(run_copy))
    assert calls == ["ckpt-2", "ckpt-4"]
    assert trained.step == 4 and trained.checkpoint.endswith("ckpt-4")


def _newest_after_oldest(model_dir):
    """A find_readable that first picks the oldest checkpoint (the one about to rotate away)."""
    real = checkpoints.find_readable
    picks = []

    def find(model_dir_arg, step=None, announce=True):
        picks.append(step)
        if len(picks) == 1:
            return str(model_dir / "checkpoints" / "ckpt-2")
        return real(model_dir_arg, step, announce)

    return find


def test_no_readable_checkpoint_is_a_clear_error_and_deletes_nothing(digits_data_dir, run_copy):
    ckpt_dir = run_copy / "checkpoints"
    for name in os.listdir(ckpt_dir):
        if name.endswith(".index"):
            _truncate(ckpt_dir / name)
    before = sorted(os.listdir(ckpt_dir))
    with pytest.raises(checkpoints.NoReadableCheckpointError, match="Nothing was deleted"):
        train(digits_data_dir, run_copy, "--train_steps=6", "--pool_size=2")
    with pytest.raises(checkpoints.NoReadableCheckpointError, match="ckpt-4"):
        checkpoints.load_trained(str(run_copy))
    assert sorted(os.listdir(ckpt_dir)) == before


def test_a_run_moved_into_a_bracketed_directory_is_refused_naming_the_bracket(run_copy):
    # Training refuses such a --model_dir; a run renamed into one afterwards cannot have its
    # checkpoints opened (TensorFlow reads [...] as a pattern), and the error says why.
    moved = run_copy.parent / "run[1]"
    os.rename(run_copy, moved)
    with pytest.raises(checkpoints.NoReadableCheckpointError, match="contains a square bracket"):
        checkpoints.load_trained(str(moved))
    assert os.path.exists(moved / "checkpoints" / "checkpoint")


def test_resume_with_another_batch_size_restarts_the_data_with_a_warning(
    digits_data_dir, run_copy, caplog
):
    result = train(digits_data_dir, run_copy, "--train_steps=6", "--pool_size=2", "--batch_size=4")
    assert result.step == 6
    assert "fresh shuffle" in caplog.text and "--batch_size=4" in caplog.text
    # The new batch size is the run's now: resuming again needs no restart.
    caplog.clear()
    assert train(digits_data_dir, run_copy, "--train_steps=8", "--pool_size=2", "--batch_size=4")
    assert "fresh shuffle" not in caplog.text


def test_temporaries_of_killed_saves_are_cleaned_and_a_lost_grid_rewritten(
    digits_data_dir, run_copy
):
    (run_copy / "checkpoints" / "ckpt-6_temp").mkdir()
    (
        run_copy / "checkpoints" / "ckpt-6_temp" / "part-00000-of-00001.data-00000-of-00001"
    ).write_bytes(b"x")
    (run_copy / "checkpoints" / "checkpoint.tmp0123abcd").write_text("model_checkpoint_pa")
    (run_copy / "samples" / "step_000004.png.tmp-12345").write_bytes(b"half")
    os.remove(run_copy / "samples" / "step_000004.png")
    train(digits_data_dir, run_copy, "--train_steps=4", "--pool_size=2")
    assert not (run_copy / "checkpoints" / "ckpt-6_temp").exists()
    assert not (run_copy / "checkpoints" / "checkpoint.tmp0123abcd").exists()
    assert sorted(os.listdir(run_copy / "samples")) == ["step_000002.png", "step_000004.png"]


def test_each_sample_grid_is_written_once(digits_data_dir, run_copy, monkeypatch):
    # The sample action writes the last step's grid; the end of the run does not write it again.
    written = []
    real = train_lib.write_samples

    def counting(model, batch, model_dir, step, writer):
        written.append(int(step))
        return real(model, batch, model_dir, step, writer)

    monkeypatch.setattr(train_lib, "write_samples", counting)
    train(digits_data_dir, run_copy, "--train_steps=8", "--pool_size=2")
    assert written == [6, 8]


# -- one trainer per model dir -------------------------------------------------------------------


def _write_lock(model_dir, pid, host=None):
    os.makedirs(model_dir, exist_ok=True)
    lock = {"host": host or socket.gethostname(), "pid": pid, "started": "then", "command": "x y"}
    (model_dir / "lock").write_text(json.dumps(lock))


def test_a_model_dir_in_use_is_refused_naming_the_holder(digits_data_dir, tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        _write_lock(tmp_path / "run", holder.pid)
        with pytest.raises(train_lib.ModelDirInUseError) as err:
            train(digits_data_dir, tmp_path / "run")
        text = str(err.value)
        assert f"pid {holder.pid}" in text and socket.gethostname() in text and "x y" in text
        # Another host's lock is never taken over (its pid means nothing here).
        _write_lock(tmp_path / "run", 1, host="elsewhere.example")
        with pytest.raises(train_lib.ModelDirInUseError, match="elsewhere.example"):
            train_lib.ModelDirLock(str(tmp_path / "run")).acquire()
    finally:
        holder.stdin.close()
        holder.wait()
    assert not os.path.exists(tmp_path / "run" / "checkpoints")


def test_a_lock_of_a_dead_process_is_taken_over(tmp_path, caplog):
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # its pid is now free (and not reused this quickly in practice)
    _write_lock(tmp_path / "run", gone.pid)
    lock = train_lib.ModelDirLock(str(tmp_path / "run")).acquire()
    assert f"pid {gone.pid}" in caplog.text and "no longer running" in caplog.text
    assert json.loads((tmp_path / "run" / "lock").read_text())["pid"] == os.getpid()
    # A second trainer of this process's run is refused while it holds the lock... from
    # another process: here the same-process case is an earlier run's leftover, so it is
    # replaced; release removes the file.
    lock.release()
    assert not (tmp_path / "run" / "lock").exists()


def test_a_lock_whose_pid_was_reused_or_that_is_damaged_is_taken_over(tmp_path, caplog):
    from trainer import locks

    model_dir = tmp_path / "run"
    # This test's parent process is running, but it is not the process that wrote the lock:
    # the start time recorded with the pid tells them apart.
    parent = os.getppid()
    _write_lock(model_dir, parent)
    lock = json.loads((model_dir / "lock").read_text())
    lock["pid_start"] = locks.process_start(parent) + 1
    (model_dir / "lock").write_text(json.dumps(lock))
    train_lib.ModelDirLock(str(model_dir)).acquire().release()
    assert f"pid {parent}" in caplog.text and "no longer running" in caplog.text
    # With its own start time it is running: refused.
    lock["pid_start"] -= 1
    (model_dir / "lock").write_text(json.dumps(lock))
    with pytest.raises(train_lib.ModelDirInUseError, match=f"pid {parent} "):
        train_lib.ModelDirLock(str(model_dir)).acquire()
    # Locks are created whole, so an unreadable one is damaged: replaced, with a note.
    (model_dir / "lock").write_text('{"host": ')
    held = train_lib.ModelDirLock(str(model_dir)).acquire()
    assert "unreadable lock" in caplog.text
    assert json.loads((model_dir / "lock").read_text())["pid"] == os.getpid()
    held.release()
    assert os.listdir(model_dir) == []


def test_a_running_trainer_holds_the_lock_until_it_ends(digits_data_dir, tmp_path):
    """A real second process: waits for the lock file to appear (an event, no sleeps)."""
    model_dir = tmp_path / "run"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "trainer.main",
            *SMOKE,
            f"--data_dir={digits_data_dir}",
            f"--model_dir={model_dir}",
            "--train_steps=100000",
            "--sample_every=0",
            "--checkpoint_every=1000",
        ],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    try:
        # The first progress line is printed after the lock is taken.
        line = proc.stdout.readline()
        assert line.startswith("step "), line
        with pytest.raises(train_lib.ModelDirInUseError, match=f"pid {proc.pid}"):
            train(digits_data_dir, model_dir)
    finally:
        proc.kill()
        proc.wait()
    # Killed: the lock stays, names a dead pid, and the next trainer takes it over.
    assert json.loads((model_dir / "lock").read_text())["pid"] == proc.pid
    lock = train_lib.ModelDirLock(str(model_dir)).acquire()
    lock.release()


# -- clear errors -----------------------------------------------------------------------------


def test_model_dir_that_is_a_file_and_corrupt_config_are_named(digits_data_dir, tmp_path):
    path = tmp_path / "afile"
    path.write_text("x")
    with pytest.raises(NotADirectoryError, match="regular file"):
        train(digits_data_dir, path)
    with pytest.raises(NotADirectoryError, match="regular file"):
        checkpoints.load_trained(str(path))
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text('{"method": "cyclegan", "data": {')
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        train(digits_data_dir, run)
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        checkpoints.load_trained(str(run))


@pytest.mark.parametrize(
    "method, before, after",
    [
        ("stargan", "mnist,mnist_m,digits", "mnist_m,mnist,digits"),  # same size, other meaning
        ("combogan", "mnist,mnist_m,digits", "mnist,mnist_m"),  # another number of players
    ],
)
def test_resume_with_other_domains_is_refused_before_anything_is_built(
    method, before, after, tmp_path
):
    from trainer import config as config_lib

    run = tmp_path / "run"
    make = functools.partial(
        make_config, str(tmp_path / "data"), run, f"--method={method}", "--image_size=16"
    )
    run.mkdir()
    io_utils.atomic_write_json(str(run / "config.json"), make(f"--domains={before}").to_dict())
    assert config_lib.Config.load(str(run)).data.domains == tuple(before.split(","))
    with pytest.raises(
        train_lib.IncompatibleModelDirError, match=rf"domains {before} \(now {after}\)"
    ):
        train_lib.check_model_dir(make(f"--domains={after}"))
    assert train_lib.check_model_dir(make(f"--domains={before}")) is not None


def test_huge_settings_are_refused_with_the_memory_figure(digits_data_dir, tmp_path):
    with pytest.raises(train_lib.OutOfMemoryEstimateError, match=r"GiB .*(host RAM|GPU)"):
        train(digits_data_dir, tmp_path / "run", "--image_size=4096", "--batch_size=50")
    assert not (tmp_path / "run").exists()


# -- remote model dirs -------------------------------------------------------------------------


def test_ram_model_dir_trains_and_resumes_in_one_process(digits_data_dir, tmp_path, monkeypatch):
    import tensorflow as tf

    from trainer import main

    monkeypatch.chdir(tmp_path)
    model_dir = f"ram://loop-test-{os.getpid()}/run"
    summary = main.run(make_config(digits_data_dir, model_dir, "--train_steps=2"))
    assert summary["step"] == 2 and summary["metrics"]
    summary = main.run(make_config(digits_data_dir, model_dir, "--train_steps=4"))
    assert summary["step"] == 4
    gfile = tf.io.gfile
    assert gfile.exists(f"{model_dir}/config.json")
    assert gfile.exists(f"{model_dir}/metrics.json")
    assert sorted(gfile.listdir(f"{model_dir}/samples")) == [
        "step_000002.png",
        "step_000004.png",
    ]
    assert tf.train.latest_checkpoint(f"{model_dir}/checkpoints").endswith("ckpt-4")
    assert not gfile.exists(f"{model_dir}/lock")
    written_locally = [os.path.join(d, f) for d, _, fs in os.walk(tmp_path) for f in fs]
    assert os.listdir(tmp_path) == [], written_locally
    assert io_utils.read_json(f"{model_dir}/config.json")["train"]["train_steps"] == 4


def test_a_checkpoint_whose_weights_only_the_optimizers_hold_is_refused_naming_the_fix(run_copy):
    """A model rebuilt from it would be untrained: evaluation and export refuse it, saying how
    to write one that holds the weights."""
    import tensorflow as tf

    trained = checkpoints.load_trained(str(run_copy))
    holder = tf.Module()
    holder.weights = list(trained.model.variables)  # tracked by the holder, not by "model"
    step = tf.Variable(trained.step + 1, dtype=tf.int64)
    prefix = str(run_copy / "checkpoints" / f"ckpt-{trained.step + 1}")
    tf.train.Checkpoint(step=step, model=tf.Module(), optimizer_gen=holder).write(prefix)
    with open(run_copy / "checkpoints" / "checkpoint", "w") as f:
        f.write(f'model_checkpoint_path: "ckpt-{trained.step + 1}"\n')
    with pytest.raises(checkpoints.IncompatibleModelDirError) as e:
        checkpoints.load_trained(str(run_copy))
    message = str(e.value)
    assert "holds 0 of the model's" in message and "untrained" in message
    assert f"--train_steps={trained.step + 2}" in message
