"""The answer check before timing: every header a middleware of ours must add, from the same
tables the middlewares take them from."""

from __future__ import annotations

import http.client

from harness.load.validate import PROBE_ID, PROBE_ORIGIN, mark_problems
from middleware import core
from middleware.stack import ORDER


def _headers(pairs: list[tuple[str, str]]) -> http.client.HTTPMessage:
    message = http.client.HTTPMessage()
    for name, value in pairs:
        message[name] = value
    return message


ALL = [
    (core.REQUEST_ID_HEADER, PROBE_ID),
    *core.SECURE_HEADERS,
    *core.nocache_headers(),
    *core.cors_headers(PROBE_ORIGIN),
]


def test_every_header_of_every_middleware_is_checked() -> None:
    assert mark_problems(_headers(ALL), ORDER) == []
    for left_out in range(len(ALL)):
        header, _ = ALL[left_out]
        answer = _headers(ALL[:left_out] + ALL[left_out + 1 :])
        (problem,) = mark_problems(answer, ORDER)
        assert problem.endswith(f" is in the stack but the answer has no {header}")


def test_a_wrong_value_is_named_and_a_date_of_the_moment_is_not_compared() -> None:
    wrong = [(k, "SAMEORIGIN" if k == "X-Frame-Options" else v) for k, v in ALL]
    assert mark_problems(_headers(wrong), ORDER) == [
        "secure is in the stack but X-Frame-Options is 'SAMEORIGIN', not 'DENY'"
    ]
    later = [(k, "Thu, 01 Jan 2099 00:00:00 GMT" if k == "Last-Modified" else v) for k, v in ALL]
    assert mark_problems(_headers(later), ORDER) == []


def test_a_mark_of_a_middleware_not_in_the_stack_is_a_problem() -> None:
    found = mark_problems(_headers(ALL), ("request-id", "secure", "nocache"))
    assert found == [
        f"cors is not in the stack but the answer has Access-Control-Allow-Origin: {PROBE_ORIGIN!r}"
    ]
