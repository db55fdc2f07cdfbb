"""The harness's errors: one base and two kinds, so that a caller catches one class and a command
turns any of them into one line and the right exit code (harness.cli.error_lines).

- `UsageError`: what was asked cannot be done as asked (a value out of range, an unknown name, a
  combination that cannot run). Said before anything runs; the command exits 2.
- `RunError`: something failed while doing it (wrk missing, a server that would not start, a
  full disk, a file that cannot be read). The command exits 1.

A message speaks the API's terms (`repeat must be at least 1`); `param` names the keyword it is
about, and the command line puts its flag's name there instead (`--repeat`). Standard library
only: the server processes import it through the app loader.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Any error of the harness: a one-line message (a server's stderr tail may follow it)."""

    exit_code = 1

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param  # the API keyword the error is about, if one is

    @property
    def line(self) -> str:
        """The message's first line: what a command prints."""
        return (str(self).splitlines() or [type(self).__name__])[0]


class UsageError(HarnessError, ValueError):
    """What was asked cannot be done as asked; nothing has run. (A ValueError too, as the API's
    bad arguments have always been.)"""

    exit_code = 2


class RunError(HarnessError, RuntimeError):
    """Something failed while measuring; what was measured before it is kept."""

    exit_code = 1
