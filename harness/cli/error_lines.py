"""Every command's errors, said the same way: one line, and exit 2 for usage, 1 for a failure.

The API raises harness.errors' two kinds in its own terms (`repeat must be at least 1`); this is
where the command line says it with the flag (`--repeat must be at least 1`). The packages that
cannot import the harness (targets, middleware) raise ValueErrors of their own for unknown names:
they are usage errors too, listed here once.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from harness.errors import HarnessError, UsageError
from middleware.stack import BadSpin, UnknownMiddleware
from targets.server_table import ServerChoiceError
from targets.table import UnknownTarget

FOREIGN_USAGE_ERRORS: tuple[type[Exception], ...] = (
    UnknownTarget,
    ServerChoiceError,
    UnknownMiddleware,
    BadSpin,
)

F = TypeVar("F", bound=Callable[..., Any])


class OneLineError(click.ClickException):
    """`Error: message` alone (click's UsageError adds the usage text), with the exit code of
    the error's kind."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # click's is a class attribute


def flag_for(param: str | None) -> str | None:
    """The command line's name for an API keyword: its longest option (`--repeat`)."""
    context = click.get_current_context(silent=True)
    if param is None or context is None:
        return None
    for option in context.command.params:
        if option.name == param and isinstance(option, click.Option):
            return max(option.opts, key=len)
    return None


def error_line(exc: HarnessError) -> str:
    """The error's line with the flag's name: in place of the keyword the line starts with
    (`--repeat must be at least 1`), or before it (`--factory: app.py:app is already an app`)."""
    line, flag = exc.line, flag_for(exc.param)
    if flag is None or exc.param is None:
        return line
    if line.startswith(exc.param + " "):
        return flag + line[len(exc.param) :]
    return f"{flag}: {line}"


def one_line_errors(command: F) -> F:
    """Turn the harness's errors (and the foreign usage errors) raised inside a command into its
    one-line message and exit code; anything else is a bug and keeps its traceback."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except HarnessError as exc:
            raise OneLineError(error_line(exc), exc.exit_code) from None
        except FOREIGN_USAGE_ERRORS as exc:
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise OneLineError(first, UsageError.exit_code) from None

    return wrapper  # type: ignore[return-value]
