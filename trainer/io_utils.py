"""The file layer every stage writes and reads through: local paths and TensorFlow file systems
(``gs://``, ``ram://`` ...) alike, with crash-safe writes (a reader never sees a half-written file).

Local paths use the OS directly (fsync, then an atomic rename; TensorFlow is not imported, so the
runtimes may use this module). Paths with a scheme go through ``tf.io.gfile``: a temporary name
beside the target, then a rename with overwrite, which is atomic where the file system makes
renames atomic (not on object stores such as GCS, where the object appears whole when written).
"""

import errno
import json
import os
import tempfile


def pattern_path_problem(path):
    """Why TensorFlow cannot restore checkpoints under ``path``, or None: it opens a checkpoint
    by file pattern, where ``[...]`` is a character class, so a bracketed path never matches
    its own files (``*`` and ``?`` match themselves and do no harm)."""
    if "[" in path or "]" in path:
        return (
            f"{path!r} contains a square bracket, which TensorFlow reads as a file-pattern "
            "character class when it opens checkpoints, so checkpoints there cannot be "
            "restored: choose a directory name without [ or ]"
        )
    return None


def is_remote(path):
    """True for a path on a file system TensorFlow provides (``gs://``, ``ram://`` ...)."""
    return "://" in os.fspath(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def join(*parts):
    return os.path.join(*[os.fspath(p) for p in parts])


def dirname(path):
    return os.path.dirname(os.fspath(path))


def exists(path):
    path = os.fspath(path)
    return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def isdir(path):
    path = os.fspath(path)
    return _gfile().isdir(path) if is_remote(path) else os.path.isdir(path)


def makedirs(path):
    """Creates ``path`` and its parents; a clear error when a parent is a file or not writable."""
    path = os.fspath(path)
    if is_remote(path):
        _gfile().makedirs(path)
        return path
    try:
        os.makedirs(path, exist_ok=True)
    except FileExistsError:
        raise NotADirectoryError(
            f"{path} exists and is a regular file, not a directory: "
            "remove it or choose another path."
        ) from None
    except PermissionError:
        raise PermissionError(
            f"Cannot create the directory {path}: permission denied. "
            "Choose a path you can write to."
        ) from None
    except OSError as e:
        if e.errno in (errno.ENOTDIR, errno.EROFS, errno.ENOENT, errno.EPERM, errno.EACCES):
            raise OSError(
                e.errno, f"Cannot create the directory {path}: {e.strerror}. Choose another path."
            ) from None
        raise
    return path


def listdir(path):
    path = os.fspath(path)
    return sorted(_gfile().listdir(path) if is_remote(path) else os.listdir(path))


def glob(pattern):
    pattern = os.fspath(pattern)
    if is_remote(pattern):
        return sorted(_gfile().glob(pattern))
    import glob as glob_lib

    return sorted(glob_lib.glob(pattern))


def remove(path):
    """Removes a file or a directory tree; a missing path is not an error."""
    path = os.fspath(path)
    if is_remote(path):
        gfile = _gfile()
        if gfile.isdir(path):
            gfile.rmtree(path)
        elif gfile.exists(path):
            gfile.remove(path)
        return
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass


def read_bytes(path):
    path = os.fspath(path)
    if is_remote(path):
        with _gfile().GFile(path, "rb") as f:
            return f.read()
    with open(path, "rb") as f:
        return f.read()


def read_text(path):
    return read_bytes(path).decode("utf-8")


def read_json(path):
    """Parses a JSON file; a damaged file raises ValueError naming it."""
    try:
        return json.loads(read_text(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(
            f"{os.fspath(path)} is not valid JSON ({e}): the file is damaged; restore it or "
            "remove it."
        ) from None


def atomic_write_bytes(path, data):
    """Writes ``data`` to a temporary file beside ``path``, then renames it over ``path``."""
    path = os.fspath(path)
    if is_remote(path):
        gfile = _gfile()
        directory = os.path.dirname(path)
        if directory:
            gfile.makedirs(directory)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            # TensorFlow's ram:// file system appends to an existing file even in "wb" mode.
            if gfile.exists(tmp):
                gfile.remove(tmp)
            with gfile.GFile(tmp, "wb") as f:
                f.write(data)
            gfile.rename(tmp, path, overwrite=True)
        except BaseException:
            if gfile.exists(tmp):
                gfile.remove(tmp)
            raise
        return path
    directory = os.path.dirname(os.path.abspath(path))
    makedirs(directory)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
    except PermissionError:
        raise PermissionError(
            f"Cannot write {path}: permission denied in {directory}. "
            "Choose a directory you can write to."
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would (web servers and
        # other users read metadata.json and metrics).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def atomic_write_text(path, text):
    if not isinstance(text, str):
        raise TypeError(f"atomic_write_text takes a str, got {type(text).__name__}.")
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj):
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
