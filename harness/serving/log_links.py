"""A server's log file, named to it by a path whose length does not depend on where the run
writes: a link in a directory of this process's own, to the file in the run's directory.

Under a count (the instructions measures), every byte of what the server is given moves
CPython's heap, and the tables that hash objects by address with it: the same compare counted
Starlette's `none` 94 instructions a request apart (0.05%) written to `-d /tmp/ft/a` and to a
directory 55 characters longer, the log sink's path being the only difference.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
import threading
from pathlib import Path

_replacing = threading.Lock()  # two jobs' rounds may link at once


@functools.cache
def _directory() -> str:
    """This process's link directory (a fixed-length name), removed at exit."""
    made = tempfile.mkdtemp(prefix="mwbench-logs-")
    atexit.register(shutil.rmtree, made, True)
    return made


def log_link(target: Path) -> str:
    """A path of the same name as `target`, in this process's link directory, leading to it."""
    with _replacing:  # the first call makes the directory once
        link = os.path.join(_directory(), target.name)
        staged = f"{link}.new"
        if os.path.lexists(staged):
            os.unlink(staged)
        os.symlink(os.path.abspath(target), staged)
        os.replace(staged, link)
    return link
