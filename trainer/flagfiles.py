"""Flagfiles: where a ``--flagfile=NAME`` is found, and what it sets, nested ones included.

No flag is defined here, so scripts with flags of their own (``bench/results.py``, the tests)
read flagfiles as the trainer does.
"""

import os

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def _flagfile_value(text):
    """NAME of a ``--flagfile=NAME`` (or ``-flagfile=NAME``) argument or line, else None."""
    for prefix in ("--flagfile=", "-flagfile="):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return None


def _shipped_or_error(value, where):
    """The path a flagfile name denotes: ``value`` itself if it is a file, else
    trainer/configs/``value`` (or ``value``.flags)."""
    if os.path.isfile(value):
        return value
    for candidate in (value, f"{value}.flags"):
        shipped = os.path.join(CONFIG_DIR, candidate)
        if os.path.isfile(shipped):
            return shipped
    shipped = sorted(f for f in os.listdir(CONFIG_DIR) if f.endswith(".flags"))
    raise SystemExit(
        f"error: flagfile {value!r}{where} is not in the working directory nor among the "
        f"shipped configs ({', '.join(shipped)})."
    )


def flagfile_lines(path, _including=()):
    """The ``--flag[=value]`` lines of the flagfile at ``path``, in order, each nested
    ``--flagfile=NAME`` line replaced by that file's own lines, so a line overrides the ones
    before it, included ones too (``unit_long.flags`` is ``--flagfile=unit.flags`` and what it
    changes). NAME resolves beside the including file first, then as on the command line.
    Comments (``#``, ``//``) and blank lines are dropped; a file including itself is an error."""
    path = os.path.abspath(path)
    if path in _including:
        chain = " -> ".join(os.path.basename(p) for p in (*_including, path))
        raise SystemExit(f"error: flagfiles include each other in a loop: {chain}.")
    lines = []
    with open(path, encoding="utf-8") as f:
        for raw in f:
            line = raw.strip()
            if not line or line.startswith(("#", "//")):
                continue
            value = _flagfile_value(line)
            if value is None:
                lines.append(line)
                continue
            value = os.path.expanduser(value.strip())
            beside = os.path.join(os.path.dirname(path), value)
            where = f" (included by {os.path.basename(path)})"
            nested = beside if os.path.isfile(beside) else _shipped_or_error(value, where)
            lines.extend(flagfile_lines(nested, (*_including, path)))
    return lines


def flagfile_values(path):
    """{flag: value} a flagfile sets, nested flagfiles followed; a bare ``--flag`` is "true"."""
    values = {}
    for line in flagfile_lines(path):
        key, sep, value = line.lstrip("-").partition("=")
        values[key] = value if sep else "true"
    return values


def resolve_flagfile_args(argv):
    """Lets ``--flagfile=NAME`` name a flagfile shipped in trainer/configs/, and expands it.

    A value that is a path to an existing file is kept; otherwise ``trainer/configs/NAME`` (and
    NAME + '.flags') is tried, so the shipped configs work from any directory after install.
    The file's lines take the argument's place (``flagfile_lines``: nested flagfiles resolved
    the same way, beside the including file first), so flags after it still override it.
    """
    out = []
    for arg in argv:
        value = _flagfile_value(arg)
        out.extend([arg] if value is None else flagfile_lines(_shipped_or_error(value, "")))
    return out
