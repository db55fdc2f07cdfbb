"""Flask: the WSGI middlewares around `app.wsgi_app` (Flask's documented way), and `recovery` as a
Flask error handler.

Flask catches every exception of a view itself and answers 500, so a WSGI middleware never sees
one: recovery has to be Flask's own `errorhandler(Exception)`. It therefore runs inside Flask, not
between logger and secure: its 500 still passes through secure, nocache, cors and dump (and gets
their headers), and it only sees exceptions raised before the response exists; one raised while
a streamed body is iterated reaches gunicorn, which logs it and drops the connection.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from middleware import core, sink, wsgi


def recovery_handler(log_output: str) -> Callable[[Exception], Response | HTTPException]:
    write = sink.open_sink(log_output).write

    def recover(exc: Exception) -> Response | HTTPException:
        # A handler for Exception also receives Flask's HTTP errors (404, 405): those are answers,
        # not failures, and go back to Flask unchanged.
        if isinstance(exc, HTTPException):
            return exc
        request_id = core.request_id_var.get()
        write(core.panic_entry(exc, request_id))
        return Response(core.error_body(request_id), status=500, mimetype="application/json")

    return recover


def apply(app: Flask, stack: tuple[str, ...], log_output: str) -> Flask:
    """`app` with `stack` applied; the returned object is the WSGI callable to serve."""
    if "recovery" in stack:
        # Handled here instead of by Flask's default, Flask does not log it a second time.
        app.register_error_handler(Exception, recovery_handler(log_output))
    app.wsgi_app = wsgi.wrap(  # type: ignore[method-assign, assignment]
        app.wsgi_app, tuple(name for name in stack if name != "recovery"), log_output
    )
    return app
