"""One writer per directory: the lock files of training (MODEL_DIR/lock) and export
(EXPORT_DIR.lock).

A lock file holds the holder's host, pid, process start time, start date and command, so a
refusal names who holds it. On local file systems the file is created whole and exclusively
(written under a private name, then hard-linked into place: ``link`` fails if the name exists),
so a reader never sees a half-written lock. A lock whose holder is gone is taken over with a
note: same host and the pid is not running, or the pid now belongs to a process started at
another time (the pid was reused). A lock of another host is never taken over (its pid means
nothing here); the refusal says which file to delete if that process is gone.

On remote file systems (``gs://``) there is no exclusive create: the lock is checked, then
written, which warns a second writer in the usual case but cannot make the check atomic.
"""

import json
import os
import socket
import sys
import time

from trainer import console, io_utils


class DirInUseError(ValueError):
    pass


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def process_start(pid):
    """The kernel's start time of ``pid`` (clock ticks since boot), or None where /proc has no
    such entry: with the pid it names one process, even after the pid is reused."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    try:
        # Field 22; the command name (field 2) may hold spaces, so count after its ")".
        return int(text[text.rindex(")") + 2 :].split()[19])
    except (ValueError, IndexError):
        return None


def holder_running(holder):
    """False when ``holder`` (a lock's fields, from this host) is certainly not running."""
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    started = holder.get("pid_start")
    now = process_start(pid)
    return started is None or now is None or started == now


class DirLock:
    """The lock file ``path`` for ``owner`` (e.g. "trainer"); ``subject`` names the guarded
    directory in messages (``--model_dir=runs/x``), ``alternative`` is the other way out a
    refusal offers (``pass another --model_dir``).

    ``acquire()`` returns self or raises DirInUseError naming the holder; ``release()``
    removes the file if this process still holds it. Usable as a context manager.
    """

    def __init__(self, path, owner, subject, alternative=None):
        self.path = str(path)
        self.owner = owner
        self.subject = subject
        self.alternative = alternative
        self.held = False

    def _info(self):
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_start": process_start(os.getpid()),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "command": " ".join(sys.argv),
            "owner": self.owner,
        }

    def _holder(self):
        try:
            holder = io_utils.read_json(self.path)
        except (ValueError, OSError):
            return None
        return holder if isinstance(holder, dict) else None

    def acquire(self):
        text = json.dumps(self._info(), indent=2) + "\n"
        for _ in range(5):
            if self._create(text):
                self.held = True
                return self
            holder = self._holder()
            if holder is None:
                if not io_utils.exists(self.path):
                    continue  # released between our attempt and the read
                # Locks are created whole, so an unreadable one was damaged: take it over.
                console.warn(f"Replacing the unreadable lock file {self.path}.")
                self._break(None)
                continue
            same_host = holder.get("host") == socket.gethostname()
            pid = holder.get("pid")
            if same_host and pid == os.getpid():
                self._break(holder)  # left by an earlier run in this process
                continue
            if same_host and not holder_running(holder):
                console.warn(
                    f"Taking over {self.path}: its holder (pid {pid}, started "
                    f"{holder.get('started')}) is no longer running."
                )
                self._break(holder)
                continue
            what = holder.get("owner") or self.owner
            alternative = f", or {self.alternative}" if self.alternative else ""
            raise DirInUseError(
                f"{self.subject} is in use by another {what}: pid {pid} on host "
                f"{holder.get('host')}, started {holder.get('started')} (command: "
                f"{holder.get('command')}). Wait for it to finish or stop it{alternative}. "
                f"If that process is gone, delete {self.path}."
            )
        raise DirInUseError(f"Could not take the lock {self.path}; retry.")

    def _create(self, text):
        if io_utils.is_remote(self.path):
            if io_utils.exists(self.path):
                return False
            io_utils.atomic_write_text(self.path, text)
            return True
        directory = os.path.dirname(os.path.abspath(self.path))
        io_utils.makedirs(directory)
        private = f"{self.path}.{os.getpid()}.tmp"
        try:
            with open(private, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.link(private, self.path)
        except FileExistsError:
            return False
        except PermissionError:
            raise PermissionError(
                f"Cannot write in {directory}: permission denied. Choose a directory you can "
                "write to."
            ) from None
        finally:
            if os.path.lexists(private):
                os.remove(private)
        return True

    def _break(self, holder):
        """Removes the lock file if it is still the one read as ``holder`` (another process
        that took over in between keeps its fresh lock)."""
        if io_utils.is_remote(self.path):
            io_utils.remove(self.path)
            return
        aside = f"{self.path}.{os.getpid()}.stale"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return
        try:
            with open(aside, encoding="utf-8") as f:
                moved = json.load(f)
        except (ValueError, OSError):
            moved = None
        if holder is not None and moved != holder:
            # A fresh lock was moved aside: put it back unless yet another one took the name.
            try:
                os.link(aside, self.path)
            except FileExistsError:
                pass
        os.remove(aside)

    def release(self):
        if self.held:
            holder = self._holder()
            if holder is None or holder.get("pid") == os.getpid():
                io_utils.remove(self.path)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
