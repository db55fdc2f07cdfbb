"""The harness's scratch directory: what lives only while it runs (log links, the server-side
path, a server's stderr, k6's script), in one directory of its own under the temporary
directory.

Removed at exit; if the harness is killed outright, by the reapers of its servers
(`lifetime.GroupReaper`), and failing those (no server was running) by the next harness that
makes one: each holds a lock on a file in its directory while it lives, and the kernel
releases the lock however the process ends, so a directory whose lock can be taken has lost
its harness, and a live harness's never can (a pid, being reused, could not say as much).
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import tempfile
import threading

PREFIX = "mwbench-"
LOCK = ".alive"

_made: list[str] = []
_held: list[int] = []  # the lock's descriptor, open while this process lives
_making = threading.Lock()  # two jobs' rounds may ask for it at once


def scratch_directory() -> str:
    """This process's scratch directory, made on first use. Its name's length is fixed
    (mkdtemp's), as a count needs of the paths a server is given."""
    with _making:
        if not _made:
            sweep_the_dead(tempfile.gettempdir())
            made = tempfile.mkdtemp(prefix=PREFIX)
            _held.append(_hold(made))
            atexit.register(shutil.rmtree, made, True)
            _made.append(made)
        return _made[0]


def _hold(directory: str) -> int:
    # Locked under another name, then renamed: a sweeper never finds the lock file unlocked.
    staged = os.path.join(directory, f"{LOCK}.new")
    fd = os.open(staged, os.O_WRONLY | os.O_CREAT, 0o600)  # not inherited by children
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.replace(staged, os.path.join(directory, LOCK))
    return fd


def sweep_the_dead(root: str) -> list[str]:
    """Remove the scratch directories under `root` whose harness is gone; those removed."""
    try:
        names = os.listdir(root)
    except OSError:
        return []
    removed = []
    for name in names:
        if not name.startswith(PREFIX):
            continue
        directory = os.path.join(root, name)
        try:
            fd = os.open(os.path.join(directory, LOCK), os.O_RDONLY)
        except OSError:  # not a scratch directory (a file, another user's), or being made
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its harness lives
            os.close(fd)
            continue
        shutil.rmtree(directory, ignore_errors=True)
        os.close(fd)
        removed.append(directory)
    return removed
