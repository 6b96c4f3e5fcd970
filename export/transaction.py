"""An export as a transaction: ``DIR/export`` is the old complete set or the new one, never a mix.

On a local file system ``DIR/export`` is a symbolic link to a sibling version directory
(``DIR/.export.<pid>.<token>``). An export builds its whole set (artifacts, carried-over
artifacts of the same checkpoint, ``metadata.json``) in a fresh version directory, then points
the link at it with one ``os.replace`` of the link, which is atomic on POSIX: a reader, or a
``kill -9`` at any moment, sees the old set or the new one, and ``metadata.json`` always
describes the files beside it. Version and build directories that are no longer the link's
target are removed at the start of the next export (the previous set stays readable until
then), except those of a live exporting process.

A plain directory left by an earlier version of this tool is replaced the same way, swapped
with ``renameat2(RENAME_EXCHANGE)`` where the kernel offers it (Linux); elsewhere it is renamed
aside just before the link takes its place, so for that one moment ``DIR/export`` is missing
(but never inconsistent).

One export at a time writes a given ``DIR/export``: ``DIR/export.lock`` (trainer/locks.py, the
code of the training lock) names the exporting process; a second export is refused naming it
(pid, host, command, since when), and the lock of a killed export is taken over by the next
one. Exporting while a trainer writes checkpoints to the same model_dir is fine: the export
reads the newest readable checkpoint and writes nothing the trainer writes.

Remote directories (``gs://``, ``ram://`` ...; anything with a scheme) have no links or atomic
renames of directories: the set is built in a local temporary directory, then each new file is
copied into place (each object is written whole), ``metadata.json`` last, and files that the
old metadata listed and the new one does not are deleted after it. A reader during the copy can
find new artifacts beside the old ``metadata.json``; a kill during the copy leaves the old
``metadata.json`` with some files already replaced, until the next export completes.
"""

import ctypes
import ctypes.util
import os
import shutil
import tempfile

from export import metadata as metadata_lib
from trainer import locks

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_ARTIFACT_SUFFIXES = (".onnx", ".tflite", ".keras", "_savedmodel")


def is_remote(path):
    return "://" in str(path)


def _gfile():
    import tensorflow as tf

    return tf.io.gfile


def _prefix(export_dir):
    return f".{os.path.basename(os.path.normpath(export_dir))}."


def _pid_alive(pid):
    if pid == os.getpid():
        return False  # this process exports one set at a time: its old builds are stray
    return locks.pid_alive(pid)


def lock_path(export_dir):
    """``EXPORT_DIR.lock``, beside the directory (its sets come and go as a whole)."""
    export_dir = str(export_dir)
    if is_remote(export_dir):
        return export_dir.rstrip("/") + ".lock"
    return os.path.abspath(export_dir) + ".lock"


def _remove(path):
    if os.path.islink(path) or os.path.isfile(path):
        os.remove(path)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _readable_mode(path):
    # mkdtemp creates 0700: give the set the mode a plain mkdir would (servers read it).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o777 & ~umask)


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _exchange(a, b):
    """Atomically swaps the names ``a`` and ``b`` (Linux renameat2); False where unsupported."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return result == 0


def _foreign_entries(directory):
    """Entries of a plain export directory that no export wrote (refused, never deleted)."""
    try:
        meta = metadata_lib.read_metadata(directory)
        listed = {a.get("file") for a in meta.get("artifacts", [])}
    except (FileNotFoundError, ValueError):
        listed = set()
    return sorted(
        name
        for name in os.listdir(directory)
        if not name.startswith(".")
        and name != metadata_lib.METADATA_FILE
        and name not in listed
        and not name.endswith(_ARTIFACT_SUFFIXES)
    )


class Transaction:
    """Builds one export set and swaps it in as a whole (see the module docstring).

    ``build_dir``: the local directory to write the new set into; ``current_dir``: the
    directory holding the current set (None when there is none); ``carry(names)`` keeps
    artifacts of the current set in the new one; ``commit()`` / ``abort()`` end it.
    """

    def __init__(self, export_dir):
        self.export_dir = str(export_dir)
        self.remote = is_remote(self.export_dir)
        self.current_dir = None
        self.build_dir = None
        self._kept = set()
        self.lock = locks.DirLock(
            lock_path(self.export_dir),
            owner="export",
            subject=f"The export directory {self.export_dir}",
            alternative="pass another --export_dir",
        )
        try:
            self.lock.acquire()
            self._begin()
        except OSError as e:  # permissions, a file where a directory should be, a full disk ...
            where = f": {e.filename}" if e.filename else ""
            raise OSError(
                f"Cannot write the export to {self.export_dir} ({e.strerror or e}{where}): "
                "choose a writable --export_dir, or fix the directory's permissions."
            ) from None
        finally:
            if self.build_dir is None:
                self.lock.release()

    # -- begin ----------------------------------------------------------------------------------
    def _begin(self):
        if self.remote:
            gfile = _gfile()
            if gfile.exists(os.path.join(self.export_dir, metadata_lib.METADATA_FILE)):
                self.current_dir = self.export_dir
            self.build_dir = tempfile.mkdtemp(prefix="img2img-export-")
            return
        export_dir = os.path.abspath(self.export_dir)
        parent = os.path.dirname(export_dir)
        os.makedirs(parent, exist_ok=True)
        if os.path.isfile(export_dir):
            raise ValueError(
                f"--export_dir={self.export_dir} is a file: pass a directory (it is created)."
            )
        if os.path.isdir(export_dir) and not os.path.islink(export_dir):
            foreign = _foreign_entries(export_dir)
            if foreign:
                raise ValueError(
                    f"--export_dir={self.export_dir} holds files that no export wrote "
                    f"({', '.join(foreign[:5])}): pass an empty or new --export_dir."
                )
        if os.path.isdir(export_dir):
            self.current_dir = os.path.realpath(export_dir)
        self._clean(parent)
        self.build_dir = tempfile.mkdtemp(prefix=f"{_prefix(export_dir)}{os.getpid()}.", dir=parent)
        _readable_mode(self.build_dir)

    def _clean(self, parent):
        """Removes version and build directories that are not the current set (and not a live
        process's build), and the temporary files a killed export left."""
        prefix = _prefix(self.export_dir)
        for name in os.listdir(parent):
            if not name.startswith(prefix):
                continue
            path = os.path.join(parent, name)
            if self.current_dir and os.path.realpath(path) == self.current_dir:
                continue
            pid = name[len(prefix) :].split(".", 1)[0]
            if pid.isdigit() and _pid_alive(int(pid)):
                continue
            _remove(path)

    # -- carry ----------------------------------------------------------------------------------
    def carry(self, names):
        """Puts the current set's ``names`` (files or directories) in the new set unchanged;
        returns the names carried (those that exist)."""
        carried = []
        for name in names:
            if self.remote:
                if _gfile().exists(os.path.join(self.current_dir, name)):
                    self._kept.add(name)
                    carried.append(name)
                continue
            src = os.path.join(self.current_dir, name)
            dst = os.path.join(self.build_dir, name)
            if os.path.isdir(src):
                shutil.copytree(src, dst, copy_function=_link_or_copy)
            elif os.path.isfile(src):
                _link_or_copy(src, dst)
            else:
                continue
            carried.append(name)
        return carried

    # -- end ------------------------------------------------------------------------------------
    def commit(self):
        """Makes the built set the current one (see the module docstring)."""
        if self.remote:
            return self._commit_remote()
        export_dir = os.path.abspath(self.export_dir)
        parent = os.path.dirname(export_dir)
        _fsync_dir(self.build_dir)
        link = os.path.join(parent, f"{_prefix(export_dir)}{os.getpid()}.link")
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(os.path.basename(self.build_dir), link)
        if os.path.isdir(export_dir) and not os.path.islink(export_dir):
            # A plain directory from an earlier export: swap it for the link.
            if _exchange(link, export_dir):
                os.rename(link, self._stray_name(parent))
            else:
                os.rename(export_dir, self._stray_name(parent))
                os.replace(link, export_dir)
        else:
            os.replace(link, export_dir)
        _fsync_dir(parent)
        self.current_dir, self.build_dir = os.path.realpath(export_dir), None
        self.lock.release()

    def _stray_name(self, parent):
        return tempfile.mktemp(prefix=f"{_prefix(self.export_dir)}{os.getpid()}.old", dir=parent)

    def _commit_remote(self):
        gfile = _gfile()
        old_files = set()
        if self.current_dir:
            try:
                path = os.path.join(self.export_dir, metadata_lib.METADATA_FILE)
                with gfile.GFile(path, "r") as f:
                    old = metadata_lib.parse_metadata(f.read(), path)
                old_files = {a.get("file") for a in old.get("artifacts", [])}
            except ValueError:
                pass
        gfile.makedirs(self.export_dir)
        names = sorted(os.listdir(self.build_dir))
        for name in names:
            if name != metadata_lib.METADATA_FILE and not name.startswith("."):
                _copy_remote(
                    os.path.join(self.build_dir, name), os.path.join(self.export_dir, name)
                )
        _copy_remote(
            os.path.join(self.build_dir, metadata_lib.METADATA_FILE),
            os.path.join(self.export_dir, metadata_lib.METADATA_FILE),
        )
        for name in old_files - set(names) - self._kept - {None}:
            path = os.path.join(self.export_dir, name)
            if gfile.isdir(path):
                gfile.rmtree(path)
            elif gfile.exists(path):
                gfile.remove(path)
        shutil.rmtree(self.build_dir, ignore_errors=True)
        self.current_dir, self.build_dir = self.export_dir, None
        self.lock.release()

    def abort(self):
        if self.build_dir:
            shutil.rmtree(self.build_dir, ignore_errors=True)
            self.build_dir = None
        self.lock.release()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None or self.build_dir:
            self.abort()
        return False


def _link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _copy_remote(src, dst):
    """Copies a local file or directory to ``dst`` through tf.io.gfile."""
    gfile = _gfile()
    if os.path.isdir(src):
        if gfile.isdir(dst):  # no stale files of the old version inside (not atomic remotely)
            gfile.rmtree(dst)
        for root, _, files in os.walk(src):
            rel = os.path.relpath(root, src)
            target = dst if rel == "." else os.path.join(dst, rel)
            gfile.makedirs(target)
            for f in files:
                _copy_file(os.path.join(root, f), os.path.join(target, f))
        return
    _copy_file(src, dst)


def _copy_file(src, dst):
    gfile = _gfile()
    if dst.startswith("ram://") and gfile.exists(dst):
        # TensorFlow's RAM file system appends to an existing file instead of replacing it.
        gfile.remove(dst)
    gfile.copy(src, dst, overwrite=True)
