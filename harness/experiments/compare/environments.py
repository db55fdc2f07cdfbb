"""Environments as an axis: the same sets in two or more Pythons (virtualenvs that differ in a
version, a package, a patch), checked before any load and compared after.

Each environment's contenders run against their own raw baseline, as on a server axis; across
environments, each (server, target, set) is compared with the first environment's, paired round
by round, in every measure: the change an upgrade makes per request.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.experiments.compare.axes import AxisRow, axis_rows
from harness.experiments.compare.contenders import Contender, Entry
from harness.machine.environment import FRAMEWORKS
from harness.serving.apps import describe_app
from harness.serving.pythons import (
    Python,
    PythonError,
    PythonInfo,
    check_supported,
    find_python,
    lacks,
    probe,
    server_modules,
)
from harness.serving.userapp.spec import AppLoadError, AppSpec
from targets.server_table import Server, server_packages


def check_pythons(
    pythons: Sequence[Python | str], serving: dict[Contender, Server]
) -> tuple[PythonInfo, ...]:
    """Each environment probed for what its contenders need: a supported CPython, each server's
    modules, each target's framework (a target here imported there; a user's app described
    there, with the same layers as in the first). PythonError, one line, for the first that
    lacks something; nothing has been loaded yet."""
    found: list[PythonInfo] = []
    for given in pythons:
        python = given if isinstance(given, Python) else find_python(given)
        mine = [c for c in serving if c.python == python.name]
        info = probe(
            python,
            packages=(*FRAMEWORKS, *server_packages()),
            modules=server_modules(p for c in mine for p in serving[c].packages),
            imports=tuple(dict.fromkeys(c.target.module for c in mine if not c.target.is_user_app)),
        )
        check_supported(info)
        for contender in mine:
            _check_contender(info, contender, serving[contender])
        found.append(info)
    return tuple(_check_apps(found, serving))


def _check_contender(info: PythonInfo, contender: Contender, server: Server) -> None:
    where = f"{info.python.name} ({info.python.path})"
    for package in server.packages:
        if lacks(info, package):
            raise PythonError(
                f"{where} has no {package}, which {server.name} needs: install it there"
            )
    why = info.broken.get(contender.target.module)
    if why is not None:
        raise PythonError(f"{where} cannot import the {contender.target.name} target: {why}")


def _check_apps(infos: list[PythonInfo], serving: dict[Contender, Server]) -> list[PythonInfo]:
    """A user's app loads in every environment, with the layers -m chose from; each
    environment's record gains the versions of what the app imported there."""
    apps = {c.target for c in serving if c.target.is_user_app}
    for target in apps:
        assert target.app is not None
        for k, info in enumerate(infos):
            spec = AppSpec(target.app, target.factory, target.app_dir)
            try:
                there = describe_app(spec, python=info.python.path)
            except AppLoadError as exc:
                raise PythonError(f"{info.python.name}: {exc}") from None
            if there.layer_names != target.layers:
                raise PythonError(
                    f"{target.app} has other layers in {info.python.name}: "
                    f"{', '.join(there.layer_names) or '(none)'}, not "
                    f"{', '.join(target.layers) or '(none)'}; -m names the same in each"
                )
            infos[k] = dataclasses.replace(info, packages={**info.packages, **there.imports})
    return infos


def env_rows(entries: list[Entry], pythons: Sequence[str]) -> list[AxisRow]:
    """Every contender in every environment, grouped by contender, each against the first
    environment's; [] with fewer than two environments."""
    return axis_rows(entries, "python", pythons)
