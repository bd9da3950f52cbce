"""Checks of dataset and input files before they are opened: regular files of a bounded size only.

A FIFO named like a depth file would block a reader forever, a link to ``/dev/zero`` would feed it
without end, a link loop or a dangling link raises at open: :func:`file_problem` says what is wrong
with a path without opening it, and :func:`special_entries` lists every such entry under a folder.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Iterator

__all__ = ["file_problem", "special_entries", "MAX_FILE_BYTES"]

#: largest data file a reader opens (bytes), unless it passes its own limit
MAX_FILE_BYTES = 512 * 1024 * 1024

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a folder"))


def file_problem(path: str | os.PathLike, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Why ``path`` cannot be read as a data file, or ``None`` when it is a regular file of at most
    ``max_bytes`` bytes (links followed). Never opens the file."""
    try:
        st = os.stat(path)
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        if e.errno == errno.ENOENT:
            return "dangling symbolic link" if os.path.islink(path) else "file not found"
        return f"cannot access: {e.strerror}"
    if not stat.S_ISREG(st.st_mode):
        kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
        return f"not a regular file ({kind})"
    if st.st_size > max_bytes:
        return f"file is {st.st_size / 2**20:.0f} MiB, more than the {max_bytes / 2**20:.0f} MiB allowed"
    return None


def special_entries(root: str | os.PathLike, suffixes: tuple[str, ...] = ()) -> Iterator[tuple[Path, str]]:
    """``(path, problem)`` of every entry under ``root`` a reader would skip or fail on: special files,
    dangling links, link loops, links to folders (not followed), and folders named with one of
    ``suffixes`` (e.g. a folder ``x.png``). Sorted walk; links to folders are not entered."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        folder = Path(dirpath)
        dirnames.sort()
        for d in list(dirnames):
            p = folder / d
            if os.path.islink(p):
                dirnames.remove(d)
                yield p, "a link to a folder (not followed)"
            elif suffixes and d.lower().endswith(suffixes):
                yield p, "a folder named like a data file"
        for f in sorted(filenames):
            problem = file_problem(folder / f, max_bytes=1 << 62)
            if problem is not None:
                yield folder / f, problem
