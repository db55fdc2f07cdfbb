"""Every target, started for real, answers the whole route table (SPEC §2)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from harness.serving.servers import RunningServer, running
from targets.table import TARGETS
from tests.conftest import ALL_TARGETS, listening_addresses, request


@pytest.fixture(scope="module", params=ALL_TARGETS)
def server(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    with running(request.param) as srv:
        yield srv


def test_table_lists_every_target_once() -> None:
    assert tuple(TARGETS) == ALL_TARGETS
    for target in TARGETS.values():
        # every baseline is a raw target of the same interface, and a raw target is its own
        if target.baseline is not None:
            baseline = TARGETS[target.baseline]
            assert baseline.is_raw
            assert baseline.interface == target.interface
            assert baseline.server == target.server


def test_healthz_exact_bytes(server: RunningServer) -> None:
    reply = request(server.url)
    assert reply.status == 200
    assert reply.body == b'{"status":"ok"}'
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["Content-Length"] == "15"


def test_echo_returns_the_body(server: RunningServer) -> None:
    payload = json.dumps({"hello": "world", "n": [1, 2, 3]}).encode()
    reply = request(
        server.url, "POST", "/echo", body=payload, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 200
    assert reply.body == payload
    assert reply.headers["Content-Type"].startswith("application/json")


def test_panic_is_a_500_and_the_server_keeps_serving(server: RunningServer) -> None:
    assert request(server.url, path="/panic").status == 500
    assert request(server.url).status == 200
    assert server.alive()


@pytest.mark.parametrize("path", ["/", "/nope", "/healthz/extra"])
def test_unknown_paths_are_404(server: RunningServer, path: str) -> None:
    assert request(server.url, path=path).status == 404


def test_server_binds_loopback_by_default(server: RunningServer) -> None:
    assert server.port > 0
    assert listening_addresses(server.port) == {"127.0.0.1"}
