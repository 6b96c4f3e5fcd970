"""Crash-safe writes: atomic replace, readable mode, no temporary left behind on failure."""

import os
import stat

import pytest

from trainer import io_utils


def test_atomic_write_json_round_trip_and_mode(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    io_utils.atomic_write_json(path, {"b": 1, "a": [1.5, "x"]})
    assert io_utils.read_json(path) == {"a": [1.5, "x"], "b": 1}
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o666 & ~umask
    io_utils.atomic_write_text(path, "replaced\n")
    assert path.read_text() == "replaced\n"
    assert os.listdir(path.parent) == ["metrics.json"]


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "config.json"
    io_utils.atomic_write_json(path, {"ok": True})
    with pytest.raises(TypeError):
        io_utils.atomic_write_text(path, object())
    assert io_utils.read_json(path) == {"ok": True}
    assert os.listdir(tmp_path) == ["config.json"]
