"""`harness layers`: a middleware with long arguments (prometheus-fastapi-instrumentator's run to
~900 characters) keeps the table readable; --json has every detail whole."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from harness.cli.layers import DETAIL_WIDTH, shortened
from harness.cli.main import main

# A Starlette app with one middleware whose arguments run long, as an instrumentation's do.
APP = """\
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class Instrumented:
    def __init__(self, app, **options):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class Plain(Instrumented):
    pass


async def home(request):
    return PlainTextResponse("ok")


app = Starlette(routes=[Route("/", home)], middleware=[
    Middleware(Plain, level=1),
    Middleware(
        Instrumented,
        should_group_status_codes=True,
        excluded_handlers=[f"/internal/health/check/number/{n}" for n in range(20)],
        buckets=tuple(0.001 * 2 ** n for n in range(20)),
        markup="[bold]not markup[/bold]",
        last_argument="THE-END-OF-THE-DETAIL",
    ),
])
"""


def test_a_long_detail_is_shortened_in_the_table_and_whole_in_json(tmp_path: Path) -> None:
    (tmp_path / "instrumented.py").write_text(APP)
    args = ["layers", "--app", "instrumented.py:app", "--app-dir", str(tmp_path)]
    listed = CliRunner().invoke(main, args)
    assert listed.exit_code == 0, listed.output
    row = next(line for line in listed.output.splitlines() if "Instrumented" in line)
    assert "should_group_status_codes=True, excluded_handlers=['/in" in row, listed.output
    assert row.rstrip(" │").endswith("…"), row
    assert "THE-END-OF-THE-DETAIL" not in listed.output and "/number/19" not in listed.output
    table = [line for line in listed.output.splitlines() if line[:1] in "┏┃┡│└"]
    assert len(table) == 6 and max(map(len, table)) < 110, listed.output  # one line a layer
    assert "level=1" in listed.output  # a short detail is left as it is
    assert "--json has them whole" in listed.output

    as_json = CliRunner().invoke(main, [*args, "--json"])
    assert as_json.exit_code == 0, as_json.output
    found = json.loads(as_json.output)
    layers = {layer["name"]: layer for layer in found["layers"]}
    assert list(layers) == ["Plain", "Instrumented"]
    detail = layers["Instrumented"]["detail"]
    assert len(detail) > 500 and detail.endswith("last_argument='THE-END-OF-THE-DETAIL'")
    assert "markup='[bold]not markup[/bold]'" in detail
    assert found["compared_with"] == "raw-asgi" and found["interface"] == "asgi"


def test_shortened_keeps_whole_arguments_from_the_first() -> None:
    assert shortened("a=1, b=2") == "a=1, b=2"
    long = ", ".join(f"argument_{n}={'x' * 8}" for n in range(10))
    short = shortened(long)
    assert len(short) <= DETAIL_WIDTH and short.endswith(", …")  # after a whole argument
    assert short.startswith("argument_0=xxxxxxxx, argument_1=xxxxxxxx")
    assert long.startswith(short.removesuffix(", …"))
    one = "only=" + "y" * 200  # an argument longer than the column: cut within it, marked
    assert shortened(one) == one[: DETAIL_WIDTH - 1] + "…"
    two = "a=1, b=" + "y" * 200  # a cut after `a=1` would say next to nothing
    assert shortened(two) == two[: DETAIL_WIDTH - 1] + "…"


def test_brackets_in_a_detail_are_not_markup(tmp_path: Path) -> None:
    app = APP.replace("Middleware(Plain, level=1)", "Middleware(Plain, tag='[red]x[/red]')")
    (tmp_path / "tagged.py").write_text(app)
    listed = CliRunner().invoke(main, ["layers", "--app", "tagged.py:app", "--app-dir",
                                       str(tmp_path)])  # fmt: skip
    assert listed.exit_code == 0, listed.output
    assert "tag='[red]x[/red]'" in listed.output
