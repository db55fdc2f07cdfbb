"""A server's log file, named to it by a path whose length does not depend on where the run
writes: a link in this process's scratch directory, to the file in the run's directory.

Under a count (the instructions measures), every byte of what the server is given moves
CPython's heap, and the tables that hash objects by address with it: the same compare counted
Starlette's `none` 94 instructions a request apart (0.05%) written to `-d /tmp/ft/a` and to a
directory 55 characters longer, the log sink's path being the only difference.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from harness.machine.scratch import scratch_directory

_replacing = threading.Lock()  # two jobs' rounds may link at once


def log_link(target: Path) -> str:
    """A path of the same name as `target`, in this process's link directory, leading to it."""
    directory = os.path.join(scratch_directory(), "logs")
    with _replacing:
        os.makedirs(directory, exist_ok=True)
        link = os.path.join(directory, target.name)
        staged = f"{link}.new"
        if os.path.lexists(staged):
            os.unlink(staged)
        os.symlink(os.path.abspath(target), staged)
        os.replace(staged, link)
    return link
