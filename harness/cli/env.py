"""`harness env`: what a Python environment has for the servers here, before it is measured."""

from __future__ import annotations

import json

import click

from harness.cli.console import console
from harness.cli.error_lines import one_line_errors
from harness.cli.params import PythonList


@click.command("env")
@click.option(
    "--python",
    "python",
    type=PythonList(many=False),
    default=None,
    help="The interpreter (a virtualenv's bin/python, or its directory)  [default: this one]",
)
@click.option("--json", "as_json", is_flag=True, help="Print it as JSON.")
@one_line_errors
def env_command(python: str | None, as_json: bool) -> None:
    """What an environment has: its Python, the frameworks' and servers' versions, and what each
    target and server lacks there (compare --python needs the framework and the server there,
    not mwbench).

    Example: harness env --python ../old-venv/bin/python
    """
    import sys

    from rich.table import Table

    from harness.serving.pythons import check_supported, find_python, readiness

    found = readiness(find_python(python or sys.executable))
    info = found.info
    if as_json:
        check_supported(info)  # the servers' code cannot run there: nothing is ready
        click.echo(json.dumps(found.to_dict(), indent=2))
        return
    console.print(
        f"{info.python.path}: {info.implementation} {info.version} ({info.prefix})",
        markup=False,
        soft_wrap=True,
    )
    check_supported(info)
    if info.packages:
        versions = Table(title="versions", title_justify="left")
        versions.add_column("package")
        versions.add_column("version")
        for name, version in info.packages.items():
            versions.add_row(name, version)
        console.print(versions)
    else:
        console.print("none of the frameworks or servers here is installed there")
    for hook, digest in info.startup.items():  # a patch there changes no version
        console.print(f"start-up hook: {hook} ({digest})", markup=False)
    ready = Table(title="what it can serve", title_justify="left")
    ready.add_column("target or server")
    ready.add_column("here")
    for kind, rows in (("target", found.targets), ("server", found.servers)):
        for name, lacks in rows.items():
            ready.add_row(f"{kind} {name}", lacks or "ready", style="red" if lacks else None)
    console.print(ready)
