"""A Flask app as its users write it: request hooks, and a WSGI wrapper around `app.wsgi_app`."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, jsonify
from werkzeug.middleware.proxy_fix import ProxyFix

app = Flask("shop")
app.wsgi_app = ProxyFix(app.wsgi_app, x_for=1)  # type: ignore[method-assign]


@app.before_request
def start_timer() -> None:
    g.started = time.perf_counter()


@app.after_request
def add_timing(response: Response) -> Response:
    response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - g.started) * 1000:.3f}"
    return response


@app.after_request
def powered_by(response: Response) -> Response:
    response.headers["X-Powered-By"] = "shop"
    return response


@app.get("/items/<int:item_id>")
def read_item(item_id: int) -> Any:
    return jsonify(id=item_id, name=f"item {item_id}", price=9.5)
