"""WSGI in-process: the app called as gunicorn's sync worker calls it."""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

from harness.experiments.micro.driver import Driver, NullStream, server_logger
from harness.experiments.micro.replay import MicroRequest, Reply


def _noop_write(data: bytes) -> None:
    return None


def _noop_start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
    return _noop_write


class WsgiDriver(Driver):
    interface = "wsgi"

    def __init__(
        self, app: Callable[..., Any], request: MicroRequest, *, log_output: str = "null"
    ) -> None:
        self.app = app
        self.request = request
        self.error_log = server_logger(log_output)
        self._errors = NullStream()
        self._empty_input = io.BytesIO(b"")
        self.environ = self._environ(request)

    def _environ(self, request: MicroRequest) -> dict[str, Any]:
        # What gunicorn's sync worker puts in the environ (gunicorn/http/wsgi.py).
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": "",
            "PATH_INFO": request.path,
            "QUERY_STRING": request.query,
            "RAW_URI": request.path + (f"?{request.query}" if request.query else ""),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "SERVER_NAME": request.server[0],
            "SERVER_PORT": str(request.server[1]),
            "REMOTE_ADDR": request.client[0],
            "REMOTE_PORT": str(request.client[1]),
            "SERVER_SOFTWARE": "gunicorn",
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": "http",
            "wsgi.errors": self._errors,
            "wsgi.multithread": False,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "wsgi.input_terminated": True,
            "wsgi.input": self._empty_input,
        }
        for name, value in request.headers:
            key = name.upper().replace("-", "_")
            if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                environ[key] = value
            else:
                key = "HTTP_" + key
                environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _call(self, start_response: Callable[..., Any], chunks: list[bytes] | None) -> None:
        environ = self.environ.copy()
        if self.request.body:
            environ["wsgi.input"] = io.BytesIO(self.request.body)
        try:
            result = self.app(environ, start_response)
            try:
                for chunk in result:
                    if chunks is not None:
                        chunks.append(chunk)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        except Exception:
            # gunicorn's worker: log it, answer 500 (the answer is the server's, not timed here).
            self.error_log.exception("Error handling request %s", environ["RAW_URI"])
            if chunks is not None:
                start_response("500 Internal Server Error", [])

    def check(self) -> Reply:
        reply = Reply(0, [], b"")

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Any:
            reply.status, reply.headers = int(status[:3]), list(headers)
            return _noop_write

        chunks: list[bytes] = []
        self._call(start_response, chunks)
        reply.body = b"".join(chunks)
        return reply

    def run(self, n: int) -> int:
        call, start_response = self._call, _noop_start_response
        clock = self.clock
        started = clock()
        for _ in range(n):
            call(start_response, None)
        return clock() - started
