"""A server's log file, named to it by a path whose length does not depend on where the run
writes: a link in a directory of this process's own, to the file in the run's directory.

Under a count (the instructions measures), every byte of what the server is given moves
CPython's heap, and the tables that hash objects by address with it: the same compare counted
Starlette's `none` 94 instructions a request apart (0.05%) written to `-d /tmp/ft/a` and to a
directory 55 characters longer, the log sink's path being the only difference.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from pathlib import Path

_made: list[str] = []
_lock = threading.Lock()


def _directory() -> str:
    with _lock:
        if not _made:
            _made.append(tempfile.mkdtemp(prefix="mwbench-logs-"))  # a fixed-length name
            atexit.register(shutil.rmtree, _made[0], True)
        return _made[0]


def log_link(target: Path, name: str) -> str:
    """A path, `name` in this process's link directory, that leads to `target`."""
    link = os.path.join(_directory(), name)
    staged = f"{link}.new"
    with _lock:
        if os.path.lexists(staged):
            os.unlink(staged)
        os.symlink(os.path.abspath(target), staged)
        os.replace(staged, link)
    return link
