"""The console layer: progress lines, --verbosity parsing, library chatter kept off the console."""

import io
import os
import subprocess
import sys

import pytest

from trainer import console

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class _Stream(io.StringIO):
    def __init__(self, tty):
        super().__init__()
        self._tty = tty

    def isatty(self):
        return self._tty


def test_plain_progress_lines_exclude_the_first_call_from_the_speed():
    stream = _Stream(tty=False)
    progress = console.Progress(1000, stream=stream)
    # The first call (tracing) took 100 s for 10 steps; later calls 1 s per 10 steps.
    progress.measure_from(10, now=100.0)
    first = progress.update(10, {"gen_loss": 1.23456, "disc_loss": 0.5}, now=100.0)
    assert first.startswith("step   10/1000") and "gen_loss=1.235" in first and "ETA --" in first
    line = progress.update(110, {"gen_loss": 1.0}, now=110.0)
    assert "10 steps/s" in line and "ETA 1m29s" in line
    assert stream.getvalue() == first + "\n" + line + "\n"
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_progress_line_stays_short_with_many_losses():
    progress = console.Progress(10**6, stream=_Stream(tty=False))
    progress.measure_from(0, now=0.0)
    losses = {f"a_rather_long_loss_name_{i}": 123456.789 for i in range(40)}
    line = progress.update(500, losses, now=1.0)
    assert len(line) <= console.MAX_LINE and line.rstrip().endswith("ETA 33m19s")
    assert ", ..." in line


def test_terminal_progress_updates_one_line():
    stream = _Stream(tty=True)
    progress = console.Progress(4, stream=stream)
    progress.update(2, {"x": 1.0})
    progress.update(4, {"x": 0.5})
    progress.close()
    text = stream.getvalue()
    assert text.count("\r") == 2 and text.count("\n") == 1


@pytest.mark.parametrize(
    "argv,expected",
    [
        (["prog"], 0),
        (["prog", "--verbosity=1"], 1),
        (["prog", "-v", "2"], 2),
        (["prog", "--v=-1"], -1),
        (["prog", "--verbosity=x"], 0),
    ],
)
def test_verbosity_from_argv(argv, expected):
    assert console.verbosity_from_argv(argv) == expected


_CHILD = r"""
import os, sys
from trainer import console
console.quiet_libraries(verbosity=console.verbosity_from_argv(sys.argv))
os.write(2, b"NATIVE-NOISE from C++\n")  # what TensorFlow's C++ side does
from absl import logging
logging.warning("LIBRARY-INFO chatter")  # logged by code outside the project
print("error: the project's line", file=sys.stderr, flush=True)
console.quiet_libraries(log_path=sys.argv[1])
os.write(2, b"LATER-NOISE\n")
"""


@pytest.mark.parametrize("verbose", [False, True])
def test_native_noise_goes_to_the_run_log_unless_verbose(tmp_path, verbose):
    log = tmp_path / "logs" / "run.log"
    args = [sys.executable, "-c", _CHILD, str(log)] + (["--verbosity=1"] if verbose else [])
    proc = subprocess.run(
        args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    assert proc.returncode == 0, proc.stderr
    assert "error: the project's line" in proc.stderr
    if verbose:
        assert "NATIVE-NOISE" in proc.stderr and not log.exists()
    else:
        assert "NATIVE-NOISE" not in proc.stderr and "LIBRARY-INFO" not in proc.stderr
        text = log.read_text()
        assert "NATIVE-NOISE" in text and "LIBRARY-INFO" in text and "LATER-NOISE" in text
