"""The middlewares through the real servers (gunicorn sync, uvicorn worker, aiohttp worker), for
every framework target, with the log in a file this test reads back.

One server per (target, stack) per module: the tests of a target share it, so every request here
sends its own X-Request-ID (or reads the one it got back) and looks only at its own log entries.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import os
import re
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main as harness_main
from harness.serving.log_links import log_link
from harness.serving.servers import RunningServer, running
from harness.serving.settings import ServeSettings
from middleware import core
from middleware.stack import ORDER
from tests.conftest import FRAMEWORK_TARGETS, Reply, assert_names_every_middleware, request

TARGETS = FRAMEWORK_TARGETS
HEALTHZ = b'{"status":"ok"}'
SECRETS = {
    "Authorization": "Bearer s3cret-authorization",
    "Proxy-Authorization": "Basic s3cret-proxy",
    "Cookie": "session=s3cret-cookie",
    "Set-Cookie": "id=s3cret-set-cookie",
    "X-Api-Key": "s3cret-api-key",
}
ACCESS_RE = re.compile(
    r"^\S+ access client=(?P<client>\S+) method=(?P<method>\S+) "
    r'path="(?P<path>(?:[^"\\]|\\.)*)" status=(?P<status>\d{3}) latency_ms=(?P<latency>\d+\.\d+) '
    r"request_id=(?P<rid>\S+)$",
    re.M,
)
DUMP_RE = re.compile(r"^\S+ dump request_id=(?P<rid>\S+)\n(?P<json>\{\n.*?\n\})$", re.M | re.S)

# What each framework does with GET /panic when `recovery` is not in the stack (docs/middleware.md).
DEFAULT_PANIC = {
    "raw-wsgi": ("text/html", b"Internal Server Error"),  # gunicorn's error page
    "flask": ("text/html; charset=utf-8", b"Internal Server Error"),  # Flask/Werkzeug's page
    "raw-asgi": ("text/plain; charset=utf-8", b"Internal Server Error"),  # uvicorn
    "starlette": ("text/plain; charset=utf-8", b"Internal Server Error"),  # ServerErrorMiddleware
    "fastapi": ("text/plain; charset=utf-8", b"Internal Server Error"),  # Starlette's, the same
    "raw-aiohttp": ("text/plain; charset=utf-8", b"Server got itself in trouble"),  # aiohttp
    "aiohttp": ("text/plain; charset=utf-8", b"Server got itself in trouble"),
    "django": ("text/html; charset=utf-8", b"<h1>Server Error (500)</h1>"),  # server_error view
    "django-asgi": ("text/html; charset=utf-8", b"<h1>Server Error (500)</h1>"),
}


@dataclass
class Served:
    """A running target and the file its middlewares log to."""

    target: str
    server: RunningServer
    log: Path

    def request(
        self,
        method: str = "GET",
        path: str = "/healthz",
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        return request(self.server.url, method, path, body, headers, timeout=10)

    def mark(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, mark: int) -> str:
        if not self.log.exists():
            return ""
        with self.log.open("rb") as f:
            f.seek(mark)
            return f.read().decode("utf-8")

    def wait_log(self, mark: int, until: Callable[[str], bool], timeout: float = 5.0) -> str:
        """The log written since `mark`, once `until` holds for it. The servers write their
        entries after (or while) the response goes out, so a test may read a moment early."""
        deadline = time.monotonic() + timeout
        while True:
            text = self.log_since(mark)
            if until(text) or time.monotonic() > deadline:
                return text
            time.sleep(0.01)

    def stderr(self) -> str:
        path = self.server.stderr_path
        return path.read_text(errors="replace") if path and path.exists() else ""


def _serve(target: str, stack: tuple[str, ...], directory: Path) -> Iterator[Served]:
    log = directory / f"{target}-{'+'.join(stack) or 'none'}.log"
    with running(target, ServeSettings(log_output=f"file:{log}"), stack=stack) as server:
        yield Served(target, server, log)


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def full(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The target with every middleware."""
    yield from _serve(target, ORDER, tmp_path_factory.mktemp("mw-all"))


@pytest.fixture(scope="module")
def bare(target: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The target with no middleware."""
    yield from _serve(target, (), tmp_path_factory.mktemp("mw-none"))


def access_lines(text: str, request_id: str) -> list[re.Match[str]]:
    return [m for m in ACCESS_RE.finditer(text) if m["rid"] == request_id]


def dumps(text: str, request_id: str) -> list[tuple[str, dict[str, object]]]:
    return [
        (m["json"], json.loads(m["json"])) for m in DUMP_RE.finditer(text) if m["rid"] == request_id
    ]


def raw_request(served: Served, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes http.client refuses to send; read the answer to the end (Connection: close)."""
    with socket.create_connection((served.server.host, served.server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


# ---------------------------------------------------------------------------------------------
# /healthz


def test_healthz_with_all_is_exactly_the_body(full: Served) -> None:
    reply = full.request()
    assert reply.status == 200
    assert reply.body == HEALTHZ
    assert reply.headers["Content-Type"] == "application/json"


def test_none_adds_nothing_and_logs_nothing(bare: Served) -> None:
    reply = bare.request(headers={"X-Request-ID": "none-1", "Origin": "https://a.example"})
    assert reply.status == 200 and reply.body == HEALTHZ
    for name in ("X-Request-ID", "X-Frame-Options", "Expires", "Access-Control-Allow-Origin"):
        assert name not in reply.headers
    assert not bare.log.exists()  # not even opened: a disabled middleware is not there at all


# ---------------------------------------------------------------------------------------------
# request-id


def test_valid_request_id_is_echoed_and_logged(full: Served) -> None:
    rid = f"valid.{full.target}_0-9"
    mark = full.mark()
    reply = full.request(headers={"X-Request-ID": rid})
    assert reply.status == 200
    assert reply.headers["X-Request-ID"] == rid
    text = full.wait_log(mark, lambda t: bool(access_lines(t, rid)) and bool(dumps(t, rid)))
    assert len(access_lines(text, rid)) == 1
    assert len(dumps(text, rid)) == 1


@pytest.mark.parametrize(
    "bad",
    ["x" * 129, "y" * 1000, "has space", "tab\there", "semi;colon", "a/b", "<script>", "%0D%0A"],
    ids=["129", "1000", "space", "tab", "semicolon", "slash", "html", "percent-crlf"],
)
def test_invalid_request_id_is_replaced_never_echoed_nor_logged(full: Served, bad: str) -> None:
    mark = full.mark()
    reply = full.request(headers={"X-Request-ID": bad})
    assert reply.status == 200
    echoed = reply.headers["X-Request-ID"]
    assert echoed != bad and core.is_valid_request_id(echoed)
    text = full.wait_log(mark, lambda t: bool(access_lines(t, echoed)))
    assert len(access_lines(text, echoed)) == 1
    assert bad not in text
    ((_, document),) = dumps(text, echoed)
    request = document["request"]
    assert isinstance(request, dict)
    assert request["headers"]["x-request-id"] == core.INVALID_ID


@pytest.mark.parametrize(
    "header",
    [b"X-Request-ID: ab\rcd\r\n", b"X-Request-ID: ab\r\n cd\r\n", b"X-Request-ID: ab\x00cd\r\n"],
    ids=["bare-cr", "folded-crlf", "nul"],
)
def test_request_id_with_cr_lf_is_refused_by_the_parser(full: Served, header: bytes) -> None:
    """Every server's HTTP parser (gunicorn's, httptools under uvicorn, aiohttp's) answers these
    400 before any middleware runs; what a middleware does with such a value, if one got
    through, is tested in-process (test_middleware_adapters: control characters)."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + header + b"Connection: close\r\n\r\n"
    status, _, _ = raw_request(full, request)
    assert status == 400


def test_fresh_request_id_without_the_header(full: Served) -> None:
    first, second = full.request(), full.request()
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(core.is_valid_request_id(i) for i in ids)
    assert ids[0] != ids[1]


def test_request_ids_are_unique_across_1000_requests(full: Served) -> None:
    # One client connection; http.client reconnects by itself where the sync worker closes it.
    conn = http.client.HTTPConnection(full.server.host, full.server.port, timeout=10)
    ids = set()
    deadline = time.monotonic() + 60
    try:
        for _ in range(1000):
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            response.read()
            assert response.status == 200
            ids.add(response.headers["X-Request-ID"])
            assert time.monotonic() < deadline
    finally:
        conn.close()
    assert len(ids) == 1000


# ---------------------------------------------------------------------------------------------
# logger


def test_exactly_one_access_line_per_request(full: Served) -> None:
    mark = full.mark()
    sent = [
        ("GET", "/healthz", None, 200),
        ("POST", "/echo", b'{"n":1}', 200),
        ("GET", "/missing", None, 404),
        ("GET", "/panic", None, 500),
        ("GET", "/healthz", None, 200),
    ]
    ids = [f"one-line-{full.target}-{i}" for i in range(len(sent))]
    for rid, (method, path, body, status) in zip(ids, sent, strict=True):
        assert full.request(method, path, body, {"X-Request-ID": rid}).status == status
    text = full.wait_log(mark, lambda t: all(access_lines(t, rid) for rid in ids))
    for rid, (method, path, _, status) in zip(ids, sent, strict=True):
        (line,) = access_lines(text, rid)
        assert (line["method"], line["path"], int(line["status"])) == (method, path, status)
        assert line["client"] == "127.0.0.1"
        assert float(line["latency"]) >= 0
    # Every line is whole: no access line spans two lines or holds another's text.
    assert all(line.count(" access ") <= 1 for line in text.splitlines())


def test_control_characters_in_the_path_are_logged_escaped(full: Served) -> None:
    rid = f"escape-{full.target}"
    mark = full.mark()
    reply = full.request(path="/no%0Awhere%0D%1B[31m%7F", headers={"X-Request-ID": rid})
    assert reply.status == 404
    text = full.wait_log(mark, lambda t: bool(access_lines(t, rid)))
    (line,) = access_lines(text, rid)
    assert line["path"] == "/no\\x0awhere\\x0d\\x1b[31m\\x7f"
    assert "\x1b" not in text and "\r" not in text and "\x7f" not in text


# ---------------------------------------------------------------------------------------------
# recovery


def test_recovery_answers_json_and_logs_the_traceback_once(full: Served) -> None:
    rid = f"panic-{full.target}"
    mark, stderr_before = full.mark(), full.stderr().count("Traceback")
    reply = full.request(path="/panic", headers={"X-Request-ID": rid})
    assert reply.status == 500
    assert reply.headers["Content-Type"].startswith("application/json")
    assert json.loads(reply.body) == {"error": core.ERROR_MESSAGE, "request_id": rid}
    assert b"Traceback" not in reply.body and b"Panic" not in reply.body
    assert reply.headers["X-Request-ID"] == rid
    text = full.wait_log(mark, lambda t: bool(access_lines(t, rid)))
    assert text.count("Traceback (most recent call last)") == 1
    assert f" panic request_id={rid} " in text
    assert access_lines(text, rid)[0]["status"] == "500"
    assert full.request().status == 200  # still serving
    assert full.stderr().count("Traceback") == stderr_before  # the framework did not log it too


def test_without_recovery_the_framework_default_stands(bare: Served) -> None:
    content_type, marker = DEFAULT_PANIC[bare.target]
    reply = bare.request(path="/panic")
    assert reply.status == 500
    assert reply.headers["Content-Type"] == content_type
    assert marker in reply.body
    assert b"Traceback" not in reply.body
    assert bare.request().status == 200
    deadline = time.monotonic() + 5
    while "Traceback" not in bare.stderr() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "Traceback" in bare.stderr()  # the server logged it, on its own error log


# ---------------------------------------------------------------------------------------------
# secure, nocache, cors


def test_secure_and_nocache_headers(full: Served) -> None:
    for path, status in (("/healthz", 200), ("/missing", 404)):
        reply = full.request(path=path)
        assert reply.status == status
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert reply.headers["X-Content-Type-Options"] == "nosniff"
        assert reply.headers["X-XSS-Protection"] == "1; mode=block"
        assert "Strict-Transport-Security" not in reply.headers  # plain http
        assert reply.headers["Cache-Control"] == "no-cache, no-store, max-age=0, must-revalidate"
        assert email.utils.parsedate_to_datetime(reply.headers["Expires"]).year == 1970
        modified = email.utils.parsedate_to_datetime(reply.headers["Last-Modified"])
        assert abs(modified.timestamp() - time.time()) < 5
        assert len(reply.headers.get_all("X-Frame-Options") or []) == 1


def test_cors_headers_only_with_origin(full: Served) -> None:
    plain = full.request()
    assert "Access-Control-Allow-Origin" not in plain.headers
    reply = full.request(headers={"Origin": "https://app.example"})
    assert reply.status == 200 and reply.body == HEALTHZ
    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert reply.headers["Access-Control-Max-Age"] == core.CORS_MAX_AGE


def test_cors_preflight_answers_204(full: Served) -> None:
    reply = full.request(
        "OPTIONS",
        headers={
            "Origin": "https://app.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-request-id",
        },
    )
    assert reply.status == 204
    assert reply.body == b""
    assert reply.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert reply.headers["Access-Control-Allow-Credentials"] == "true"
    assert "POST" in reply.headers["Access-Control-Allow-Methods"]
    assert reply.headers["Access-Control-Allow-Headers"] == "content-type, x-request-id"
    assert reply.headers["Access-Control-Max-Age"] == core.CORS_MAX_AGE


# ---------------------------------------------------------------------------------------------
# dump


def test_dump_is_pretty_sorted_and_redacted(full: Served) -> None:
    rid = f"dump-{full.target}"
    body = b'{"zeta": 1, "alpha": {"y": [1, 2], "x": null}}'
    mark = full.mark()
    reply = full.request(
        "POST",
        "/echo?q=1",
        body,
        {"X-Request-ID": rid, "Content-Type": "application/json", **SECRETS},
    )
    assert reply.status == 200 and reply.body == body
    text = full.wait_log(mark, lambda t: bool(dumps(t, rid)))
    ((raw, document),) = dumps(text, rid)
    assert raw == json.dumps(document, indent=2, sort_keys=True)
    assert "s3cret" not in text
    request, response = document["request"], document["response"]
    assert isinstance(request, dict) and isinstance(response, dict)
    for name in SECRETS:
        assert request["headers"][name.lower()] == core.REDACTED
    assert request["method"] == "POST" and request["path"] == "/echo"
    assert request["body"] == json.loads(body)
    assert request["bytes"] == len(body)
    assert response["status"] == 200
    assert response["body"] == json.loads(body)
    assert response["headers"]["content-type"].startswith("application/json")
    assert document["request_id"] == rid


def test_dump_caps_a_1mb_body(full: Served) -> None:
    rid = f"big-{full.target}"
    body = b'{"blob": "' + b"a" * (1_000_000 - 12) + b'"}'
    assert len(body) == 1_000_000
    mark = full.mark()
    reply = full.request("POST", "/echo", body, {"X-Request-ID": rid})
    assert reply.status == 200 and len(reply.body) == len(body)
    text = full.wait_log(mark, lambda t: bool(dumps(t, rid)))
    ((_, document),) = dumps(text, rid)
    for side in ("request", "response"):
        shown = document[side]
        assert isinstance(shown, dict)
        assert shown["bytes"] == 1_000_000
        assert shown["truncated"] is True
        assert len(shown["body"]) <= core.DUMP_BODY_CAP
    assert len(text) < 32_000  # the log got two capped bodies, not two megabytes


def test_dump_shows_a_non_json_body_safely(full: Served) -> None:
    rid = f"binary-{full.target}"
    body = b"\x00\x01\xff\xfe<script>alert(1)</script>\r\n\x1b[31mred\xe2\x80\xa8"
    mark = full.mark()
    reply = full.request(
        "POST", "/echo", body, {"X-Request-ID": rid, "Content-Type": "application/octet-stream"}
    )
    assert reply.status == 200 and reply.body == body
    text = full.wait_log(mark, lambda t: bool(dumps(t, rid)))
    ((raw, document),) = dumps(text, rid)
    assert raw.isascii() and all(ch == "\n" or ch.isprintable() for ch in raw)
    request = document["request"]
    assert isinstance(request, dict)
    assert isinstance(request["body"], str) and "<script>" in request["body"]
    assert "\\xff" in request["body"]


# ---------------------------------------------------------------------------------------------
# the CLI


def test_serve_rejects_an_unknown_middleware() -> None:
    result = CliRunner().invoke(harness_main, ["serve", "-t", "flask", "-m", "request-id,bogus"])
    assert result.exit_code == 2
    assert_names_every_middleware(result.output, "bogus")


# ---------------------------------------------------------------------------------------------
# spin, through the server's environment (MWBENCH_MIDDLEWARES) into each interface's adapter


@pytest.mark.parametrize("spin_target", ["flask", "starlette", "aiohttp", "django", "django-asgi"])
def test_spin_runs_inside_the_logger_on_a_real_server(spin_target: str, tmp_path: Path) -> None:
    log = tmp_path / "spin.log"
    with running(
        spin_target, ServeSettings(log_output=f"file:{log}"), stack=("logger", "spin:2ms")
    ) as server:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        try:
            conn.request("GET", "/healthz")
            response = conn.getresponse()
            assert (response.status, response.read()) == (200, HEALTHZ)
        finally:
            conn.close()
        deadline = time.monotonic() + 5
        while not ACCESS_RE.search(log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "no access line"
            time.sleep(0.01)
    lines = list(ACCESS_RE.finditer(log.read_text()))  # the readiness probes' and ours
    # logger wraps spin: the 2 ms of CPU the spin burnt are inside every latency it logged.
    assert lines and all(float(line["latency"]) >= 2.0 for line in lines)


# ---------------------------------------------------------------------------------------------
# a response that fails after it started: cut off by the real server, never rewritten

LATE = "tests/fixtures/apps/late_failure.py"


@pytest.mark.parametrize(
    ("app", "path"),
    [("wsgi_app", "/late"), ("asgi_app", "/late"), ("aiohttp_app", "/late"),
     ("aiohttp_app", "/prepared")],
)  # fmt: skip
def test_recovery_leaves_a_started_response_to_the_server(app: str, path: str) -> None:
    """In-process tests (test_middleware_adapters) show recovery re-raising once a response has
    started; here the real gunicorn, uvicorn and aiohttp servers then cut the response off: the
    client gets the 200 that started, never recovery's JSON 500, and no end of the body."""
    from harness.serving.apps import describe_app, target_for
    from harness.serving.userapp.spec import AppSpec

    info = describe_app(AppSpec(f"{LATE}:{app}", False, str(Path(__file__).parents[1])))
    assert len(info.layer_names) == 1  # mwbench's recovery, which the server below keeps
    with (
        running(target_for(info), stack=info.layer_names, ready_path="/") as server,
        socket.create_connection((server.host, server.port), timeout=10) as sock,
    ):
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):  # the server closes the connection
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 "), data
    assert b"500" not in data and core.ERROR_MESSAGE.encode() not in data
    assert b"transfer-encoding: chunked" in data.lower()
    assert not data.endswith(b"0\r\n\r\n")  # the last chunk never came: the body was cut off


def test_a_ready_path_whose_answer_is_cut_off_is_a_server_error_not_a_traceback() -> None:
    from harness.serving.apps import describe_app, target_for
    from harness.serving.servers import ServerError, start_server
    from harness.serving.userapp.spec import AppSpec

    info = describe_app(AppSpec(f"{LATE}:wsgi_app", False, str(Path(__file__).parents[1])))
    with pytest.raises(ServerError, match=r"did not answer GET /late within 2s \(IncompleteRead"):
        start_server(
            target_for(info),
            ServeSettings(ready_timeout=2),
            stack=info.layer_names,
            ready_path="/late",
        )


def test_a_server_slow_to_start_is_sent_one_readiness_request_not_one_per_try(
    tmp_path: Path,
) -> None:
    # Its socket listens before it serves: a request given up on and sent again would be one
    # more it answers as it starts, more of them the slower it starts (issue 33: under
    # callgrind with a CPU hog, two, and another count per request).
    log = tmp_path / "access.log"
    slow = ServeSettings(
        log_output=f"file:{log}", wrapper=("sh", "-c", 'sleep 2.5 && exec "$0" "$@"')
    )
    with running("raw-asgi", slow, stack=("logger",)):
        time.sleep(0.3)  # a second answer would be logged by now
        assert log.read_text().count(" access ") == 1


@pytest.mark.parametrize("inherit", [True, False])
def test_a_server_for_a_count_gets_only_the_environment_it_needs(
    inherit: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a count every byte of the environment moves the heap: with inherit_env=False the
    server keeps PATH and the like, its own variables, and none of the harness's others."""
    monkeypatch.setenv("MWBENCH_TEST_UNRELATED", "x" * 66)
    with running("raw-asgi", ServeSettings(inherit_env=inherit)) as server:
        environ = psutil.Process(server.pid).environ()
    assert environ["PATH"] == os.environ["PATH"]
    assert environ["MWBENCH_MIDDLEWARES"] == "none"
    assert ("MWBENCH_TEST_UNRELATED" in environ) is inherit


def test_a_log_link_is_as_long_whatever_the_run_directory(tmp_path: Path) -> None:
    short = tmp_path / "a" / "logs" / "none.log"
    long = tmp_path / ("a-much-longer-run-directory" * 3) / "logs" / "none.log"
    links = []
    for target in (short, long):
        target.parent.mkdir(parents=True)
        links.append(log_link(target))
        with open(links[-1], "a") as written:  # as the server's sink opens it: the file is made
            written.write("one line\n")
        assert target.read_text() == "one line\n"
    assert links[0] == links[1]  # the same name, now leading to the second
