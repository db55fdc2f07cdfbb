"""Two middlewares that do nothing, to add to the project with -m (innermost):

    harness compare --app mysite/asgi.py:application -m all,all+noop.py:SyncOnlyNoop

`SyncOnlyNoop` is written as Django's docs' first example (no capability flags: sync only), so
under ASGI Django runs it, and every layer outside it, in a thread; `AsyncCapableNoop` is the same
no-op marked sync- and async-capable, which Django never adapts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class SyncOnlyNoop:
    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)


class AsyncCapableNoop:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: Any) -> Any:
        return self.get_response(request)
