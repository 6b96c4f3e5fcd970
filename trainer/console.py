"""What a person reads: the project's lines on the console, library chatter in a log file.

TensorFlow's C++ side, absl, TFDS, tf2onnx and the SavedModel writer print dozens of lines a
run (``WARNING: All log messages before absl::InitializeLog()``, oneDNN notes, grappler's
``remapper failed``, TFDS's ``Downloading and preparing dataset``). By default they go to
``MODEL_DIR/logs/run.log``; ``--verbosity=1`` (or higher) leaves them on the terminal.

How: :func:`quiet_libraries` runs before TensorFlow is imported. It points file descriptor 2
(where native code writes) at a log file and keeps Python's ``sys.stderr`` on the original
terminal descriptor, so the project's own messages (``error: ...``, warnings, tracebacks of
real bugs) still reach the person. Python logging goes to the same log file, except records
at WARNING or above that the project itself logs: those also print as ``warning: ...``.
Until the model dir is known the log is a temporary local file; :func:`quiet_libraries` with
``log_path`` moves it there (local paths: streamed live; remote ``gs://`` / ``ram://`` paths:
copied through ``tf.io.gfile`` when the process ends).
"""

import atexit
import contextlib
import io
import logging as pylogging
import os
import sys
import tempfile
import time

RUN_LOG = os.path.join("logs", "run.log")
_PROJECT_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_PROJECT_DIRS = tuple(
    os.path.join(_PROJECT_ROOT, d) + os.sep for d in ("trainer", "export", "mobile_demo")
)


class _State:
    verbosity = 0
    redirected = False  # fd 2 points at a log file
    temp_path = None  # the log file until the model dir is known
    log_path = None  # where the log ends up
    remote_log = None  # a non-local log_path, copied at exit
    terminal = None  # Python's stream on the original stderr


_state = _State()


def verbosity_from_argv(argv):
    """The ``--verbosity`` / ``-v`` value on a command line (0 when absent or unreadable)."""
    value = None
    args = list(argv[1:])
    for i, arg in enumerate(args):
        for name in ("--verbosity", "-verbosity", "--v", "-v"):
            if arg == name and i + 1 < len(args):
                value = args[i + 1]
            elif arg.startswith(name + "="):
                value = arg.split("=", 1)[1]
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0


class _Fd2Stream(io.TextIOBase):
    """A text stream that writes to whatever file descriptor 2 currently points at."""

    def write(self, text):
        data = text.encode("utf-8", "backslashreplace")
        while data:
            data = data[os.write(2, data) :]
        return len(text)

    def writable(self):
        return True

    def isatty(self):
        return False


_LIBRARY_STREAM = _Fd2Stream()


class _ProjectWarnings(pylogging.Handler):
    """Prints the project's own WARNING/ERROR log records on the console as one line each."""

    def __init__(self):
        super().__init__(level=pylogging.WARNING)

    def emit(self, record):
        if not record.pathname.startswith(_PROJECT_DIRS):
            return
        try:
            level = "warning" if record.levelno < pylogging.ERROR else "error"
            print(f"{level}: {record.getMessage()}", file=sys.stderr, flush=True)
        except Exception:  # noqa: BLE001 - a console line must never end the run
            self.handleError(record)


def is_remote(path):
    return "://" in str(path)


def quiet_libraries(log_path=None, verbosity=None):
    """Sends library chatter to a log file (``log_path`` when given) unless ``verbosity >= 1``.

    Call it once before TensorFlow is imported (``verbosity`` from the command line, see
    :func:`verbosity_from_argv`) and again with ``log_path`` once the model dir is known.
    Idempotent; safe to call in a process that never redirected (tests): then only the Python
    logging side is configured.
    """
    if verbosity is not None:
        _state.verbosity = verbosity
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if _state.verbosity >= 1 else "1")
    if _state.verbosity >= 1:
        return
    if not _state.redirected:
        _redirect_fd2()
    _route_python_logging()
    if log_path is not None and str(log_path) != str(_state.log_path):
        _attach(str(log_path))


def _redirect_fd2():
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        terminal_fd = os.dup(2)
    except OSError:  # no stderr at all (daemonised): nothing to protect
        return
    fd, path = tempfile.mkstemp(prefix="img2img-", suffix=".log")
    os.close(fd)
    _point_fd2(path)
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    _state.terminal = open(  # noqa: SIM115 - lives as long as the process
        terminal_fd, "w", buffering=1, encoding=encoding, errors="backslashreplace"
    )
    sys.stderr = _state.terminal
    _state.temp_path = path
    _state.redirected = True
    atexit.register(_finish)


def _point_fd2(path):
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 2)
    os.close(fd)


def _route_python_logging():
    from absl import logging as absl_logging

    handler = absl_logging.get_absl_handler()
    python_handler = handler.python_handler
    if _state.redirected:
        python_handler.stream = _LIBRARY_STREAM
        absl_logging._warn_preinit_stderr = False  # its "Logging before flag parsing" line
        # absl writes to sys.stderr itself before flags are parsed (and with --logtostderr):
        # send those records to the log too.
        if hasattr(python_handler, "_log_to_stderr"):
            python_handler._log_to_stderr = lambda record: pylogging.StreamHandler.emit(
                python_handler, record
            )
    root = pylogging.getLogger()
    if handler not in root.handlers:
        root.addHandler(handler)
    if not any(isinstance(h, _ProjectWarnings) for h in root.handlers):
        root.addHandler(_ProjectWarnings())
    # Loggers that bring their own console handler (tf2onnx, the "tensorflow" logger).
    for name in ("tf2onnx", "tensorflow"):
        logger = pylogging.getLogger(name)
        for h in list(logger.handlers):
            if isinstance(h, pylogging.StreamHandler) and not isinstance(h, pylogging.FileHandler):
                logger.removeHandler(h)
        logger.propagate = True
    try:
        import tensorflow_datasets as tfds

        tfds.disable_progress_bar()
    except Exception:  # noqa: BLE001 - TFDS is optional for the export CLI
        pass


def _attach(log_path):
    """Moves the log (so far a temporary file) to ``log_path`` and continues writing there."""
    if not _state.redirected:
        return
    _state.log_path = log_path
    if is_remote(log_path):
        _state.remote_log = log_path
        return
    try:
        os.makedirs(os.path.dirname(os.path.abspath(log_path)), exist_ok=True)
        with open(_state.temp_path, "rb") as src, open(log_path, "ab") as dst:
            dst.write(src.read())
        _point_fd2(log_path)
    except OSError:
        return  # an unwritable model dir is reported by the run itself; keep the temp log
    with contextlib.suppress(OSError):
        os.remove(_state.temp_path)
    _state.temp_path = None


def log_file():
    """Where library output goes now (None when it stays on the terminal)."""
    if not _state.redirected:
        return None
    return _state.log_path or _state.temp_path


def _finish():
    """At exit: copy the log into a remote model dir; drop a temporary log never attached."""
    path = _state.temp_path
    if path is None:
        return
    try:
        if _state.remote_log:
            from trainer import io_utils

            old = (
                io_utils.read_bytes(_state.remote_log)
                if io_utils.exists(_state.remote_log)
                else b""
            )
            with open(path, "rb") as f:
                io_utils.atomic_write_bytes(_state.remote_log, old + f.read())
        os.remove(path)
    except Exception:  # noqa: BLE001 - the log is best effort at exit
        pass


@contextlib.contextmanager
def library_output():
    """Sends what libraries ``print`` (TFDS's dataset preparation lines) to the log file."""
    if not _state.redirected:
        yield
        return
    sys.stdout.flush()
    old = sys.stdout
    sys.stdout = _LIBRARY_STREAM
    try:
        yield
    finally:
        sys.stdout = old


def warn(message):
    """A warning the person must see: on the console and in the log."""
    from absl import logging as absl_logging

    if _state.redirected:
        print(f"warning: {message}", file=sys.stderr, flush=True)
        _LIBRARY_STREAM.write(f"warning: {message}\n")
    else:
        absl_logging.warning(message)


def note(message):
    """An informational line for the person (stdout) that the log keeps too."""
    print(message, flush=True)
    if _state.redirected:
        _LIBRARY_STREAM.write(message + "\n")


# -- progress -----------------------------------------------------------------------------------


def _duration(seconds):
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


MAX_LINE = 240


class Progress:
    """Training progress: one plain line per interval when stdout is not a terminal, an updating
    bar when it is.

    The speed and ETA count only steps measured after the first call (which includes tracing
    and graph building), so a long run's first ETA is not inflated by minutes.
    """

    def __init__(self, total, stream=None, interactive=None):
        self.total = total
        self.stream = stream or sys.stdout
        if interactive is None:
            interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interactive = interactive
        self._measured_from = None  # (time, step) after the first call
        self._last_width = 0

    def measure_from(self, step, now=None):
        """Speed and ETA count the steps after ``step`` (reached at ``now``): call it after the
        first call, which includes tracing."""
        self._measured_from = (time.perf_counter() if now is None else now, step)

    def update(self, step, losses, now=None):
        """Writes the progress line of ``step`` and returns it."""
        now = time.perf_counter() if now is None else now
        rate = None
        if self._measured_from is not None:
            t0, s0 = self._measured_from
            if step > s0 and now > t0:
                rate = (step - s0) / (now - t0)
        line = self.format(step, losses, rate)
        if self.interactive:
            pad = max(self._last_width - len(line), 0)
            self.stream.write("\r" + line + " " * pad)
            self._last_width = len(line)
            if step >= self.total:
                self.stream.write("\n")
                self._last_width = 0
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
        return line

    def format(self, step, losses, rate):
        width = len(str(self.total))
        head = f"step {step:>{width}}/{self.total}"
        if rate:
            tail = f"{rate:.3g} steps/s, ETA {_duration((self.total - step) / rate)}"
        else:
            tail = "ETA --" if step < self.total else ""
        parts = [f"{k}={v:.4g}" for k, v in losses.items()]
        body = ", ".join(parts)
        budget = MAX_LINE - len(head) - len(tail) - 8
        if len(body) > budget:
            body = body[: max(budget - 4, 0)].rsplit(", ", 1)[0] + ", ..."
        return "  ".join(p for p in (head, body, tail) if p)

    def close(self):
        if self.interactive and self._last_width:
            self.stream.write("\n")
            self.stream.flush()
            self._last_width = 0
