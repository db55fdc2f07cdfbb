"""A secret header (a token, a cookie) is sent by wrk and written nowhere: the script reads it
from wrk's environment, and the record of the request says [redacted]."""

from __future__ import annotations

import dataclasses
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from harness.load.request import Request
from harness.load.wrk import WrkLoad, run_wrk

TOKEN = "Bearer s3cr3t-t0ken"
ASKED = Request(
    method="POST",
    path="/items",
    headers=(("Content-Type", "application/json"), ("Authorization", TOKEN)),
    body=b"{}",
)


def test_the_script_and_the_record_hold_no_secret() -> None:
    script = ASKED.lua()
    assert "s3cr3t" not in script and 'os.getenv("MWBENCH_HEADER_1")' in script
    assert '"application/json"' in script  # what is not a secret is written as it is
    assert ASKED.secrets() == {"MWBENCH_HEADER_1": TOKEN}
    assert ASKED.to_dict()["headers"] == [
        ["Content-Type", "application/json"],
        ["Authorization", "[redacted]"],
    ]
    assert Request(headers=(("cookie", "a=b"),)).to_dict()["headers"] == [["cookie", "[redacted]"]]


class _Recording(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as wrk expects
    seen: ClassVar[list[str | None]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.seen.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recording() -> Iterator[tuple[str, list[str | None]]]:
    _Recording.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recording)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/items", _Recording.seen
    finally:
        server.shutdown()
        server.server_close()


def test_wrk_sends_the_secret_it_reads_from_its_environment(
    recording: tuple[str, list[str | None]], tmp_path: Path
) -> None:
    url, seen = recording
    script = tmp_path / "job.lua"
    script.write_text(ASKED.lua())
    load = WrkLoad(connections=1, threads=1, duration=1, timeout=2, script=str(script))
    result = run_wrk(url, dataclasses.replace(load, env=ASKED.secrets()))
    assert result.is_ok, result.reason
    assert seen and set(seen) == {TOKEN}
    without = run_wrk(url, load)  # the script alone, run by hand: no header rather than a wrong one
    assert without.is_ok and seen[-1] is None
    assert not any("s3cr3t" in p.read_text() for p in tmp_path.iterdir())
