"""Python environments as an axis: an interpreter (a virtualenv's python) that servers run in, what
it has, and how the harness's server-side code reaches it without being installed there.

What runs in a server process is this project's `targets` and `middleware` packages and the
harness's app loader (harness.serving.userapp, standard library only): a directory of links to the
three packages goes first on that interpreter's PYTHONPATH. The environment itself needs only what
it serves: the framework (or the user's app and its imports) and the server.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.machine.environment import FRAMEWORKS
from harness.machine.scratch import scratch_directory
from targets.server_table import MODULE_CHOICES, SERVERS, server_packages
from targets.table import TARGETS

MIN_PYTHON = (3, 10)  # what the server-side code is written for
PROBE_TIMEOUT = 60.0
PROBE_KEYS = {"version", "implementation", "prefix", "packages", "absent", "broken"}
SAID_LIMIT = 100  # characters of what a program that is no Python said, in its error

# Run in the other interpreter: standard library only, and written so that any Python, even 2.7,
# says its version (the rest is asked only of one the servers here can run on).
PROBE = """\
import json, platform, sys
info = {
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "implementation": platform.python_implementation(), "prefix": sys.prefix,
    "packages": {}, "absent": [], "broken": {}, "startup": {},
}
if sys.version_info >= (3, 10):
    import hashlib, importlib, importlib.util
    from importlib import metadata
    asked = json.loads(sys.argv[1])
    for name in ("sitecustomize", "usercustomize"):  # what `site` ran at start-up, if any
        path = getattr(sys.modules.get(name), "__file__", None)
        if path:
            with open(path, "rb") as source:
                info["startup"][name] = "sha256:" + hashlib.sha256(source.read()).hexdigest()[:12]
    for name in asked["packages"]:
        try:
            info["packages"][name] = metadata.version(name)
        except Exception:
            pass
    def found(module):
        try:  # a dotted name imports its parent, which may be absent
            return importlib.util.find_spec(module) is not None
        except Exception:
            return False
    info["absent"] = [m for m in asked["modules"] if not found(m)]
    for module in asked["imports"]:
        try:
            importlib.import_module(module)
        except BaseException as exc:
            info["broken"][module] = "%s: %s" % (type(exc).__name__, exc)
print(json.dumps(info))
"""


class PythonError(UsageError):
    """An interpreter that cannot serve what was asked: one line, before any load."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="pythons")


@dataclass(frozen=True)
class Python:
    """One environment: its label in tables and file names, and its interpreter, as given (a
    virtualenv's bin/python is a link to the base interpreter, and resolving it would leave the
    environment)."""

    name: str
    path: str


@dataclass(frozen=True)
class PythonInfo:
    """What an environment has: its Python, the versions of the packages asked for, and the
    modules it lacks."""

    python: Python
    version: str
    implementation: str
    prefix: str
    packages: dict[str, str] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # modules asked for that it cannot find
    broken: dict[str, str] = field(default_factory=dict)  # modules that fail to import: why
    # The start-up hooks `site` imported (sitecustomize, usercustomize), by a digest of their
    # source: a patch there changes costs and no version.
    startup: dict[str, str] = field(default_factory=dict)

    @property
    def supported(self) -> bool:
        return tuple(int(x) for x in self.version.split(".")[:2]) >= MIN_PYTHON

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.python.name,
            "path": self.python.path,
            "python": self.version,
            "implementation": self.implementation,
            "prefix": self.prefix,
            "packages": self.packages,
            "startup": self.startup,
        }


def parse_pythons(text: str) -> list[Python]:
    """`[NAME=]PATH[,...]`: each a Python interpreter, or a virtualenv's directory (its
    bin/python). A name not given is the virtualenv's directory name. PythonError when a path is
    no interpreter, or two share a name."""
    found: list[Python] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, path = part.rpartition("=") if "=" in part else ("", "", part)
        found.append(find_python(path, name or None))
    named = [part.partition("=")[0].strip() for part in text.split(",") if "=" in part]
    names = [p.name for p in found]
    for name in names:
        if names.count(name) > 1:
            hint = "give each its own name" if name in named else "name them, NAME=PATH"
            raise PythonError(f"two environments are named {name}: {hint}")
    if not found:
        raise PythonError("give at least one Python interpreter")
    return found


def find_python(path: str, name: str | None = None) -> Python:
    where = Path(path).expanduser()
    if where.is_dir():
        where = where / "bin" / "python"
    if not where.exists():
        raise PythonError(f"no Python interpreter at {path}")
    if not where.is_file() or not os.access(where, os.X_OK):
        raise PythonError(f"{path} is not an executable Python interpreter")
    absolute = Path(os.path.abspath(where))
    if name is None:  # the virtualenv's directory name, made fit for labels and file names
        venv = absolute.parent.parent if absolute.parent.name == "bin" else absolute.parent
        name = re.sub(r"[^\w.-]+", "-", venv.name or absolute.name, flags=re.ASCII).strip("-")
    if not name or any(not (c.isalnum() or c in "._-") for c in name):
        raise PythonError(
            f"environment name {name!r}: use letters, digits, '.', '_', '-' (NAME=PATH names it)"
        )
    return Python(name, str(absolute))


def probe(
    python: Python,
    *,
    packages: tuple[str, ...] = (),
    modules: tuple[str, ...] = (),
    imports: tuple[str, ...] = (),
) -> PythonInfo:
    """Ask `python` its version, the versions of `packages` (distribution names), which of
    `modules` it cannot find, and which of `imports` fail to import there (with the server-side
    code on its path). PythonError when it does not answer as a Python would."""
    asked = json.dumps({"packages": packages, "modules": modules, "imports": imports})
    try:
        done = subprocess.run(
            [python.path, "-c", PROBE, asked],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **environment_for(python.path)},
        )
    except subprocess.TimeoutExpired:
        raise PythonError(f"{python.path} did not answer within {PROBE_TIMEOUT:g}s") from None
    except OSError as exc:
        raise PythonError(f"{python.path} cannot run: {exc.strerror or exc}") from None
    try:
        data = json.loads(done.stdout.strip().splitlines()[-1])
        if not isinstance(data, dict) or not data.keys() >= PROBE_KEYS:
            raise ValueError(data)  # /bin/echo says its arguments: the last is JSON
    except (IndexError, ValueError):  # JSONDecodeError is a ValueError
        said = what_it_said(done, (PROBE, asked))
        raise PythonError(f"{python.path} is not a Python interpreter here ({said})") from None
    return PythonInfo(
        python=python,
        version=data["version"],
        implementation=data["implementation"],
        prefix=data["prefix"],
        packages=dict(data["packages"]),
        absent=tuple(data["absent"]),
        broken=dict(data["broken"]),
        startup=dict(data.get("startup") or {}),
    )


def what_it_said(done: subprocess.CompletedProcess[str], ours: tuple[str, ...]) -> str:
    """A program that is no Python, in a few words: its first line of output (a traceback's last),
    cut where it repeats one of `ours` (the probe's arguments, which /bin/ls quotes in full), its
    control characters escaped."""
    lines = [line.strip() for line in (done.stderr + "\n" + done.stdout).splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return f"it said nothing and exited with {done.returncode}"
    said = lines[-1] if lines[0].startswith("Traceback") else lines[0]
    cuts = [said.find(arg.strip().splitlines()[0][:12]) for arg in ours if arg.strip()]
    cut = min((at for at in cuts if at >= 0), default=-1)
    if cut >= 0:
        said = said[:cut].rstrip(" '\"$`=:") + " …"
    said = "".join(c if c.isprintable() else repr(c)[1:-1] for c in said)
    if len(said) > SAID_LIMIT:
        said = said[: SAID_LIMIT - 2].rstrip() + " …"
    return f"it said: {said}"


def check_supported(info: PythonInfo) -> None:
    if info.implementation != "CPython" or not info.supported:
        least = ".".join(map(str, MIN_PYTHON))
        raise PythonError(
            f"{info.python.path} is {info.implementation} {info.version}; the servers here run "
            f"on CPython {least} or newer"
        )


def module_of(package: str) -> str:
    """The module a distribution is imported as, for the servers' packages (uvicorn-worker)."""
    return package.replace("-", "_").lower()


def modules_of(package: str) -> tuple[str, ...]:
    """The modules any one of which gives what a server takes from `package`: its own, or one an
    older release of another package carried (uvicorn.workers for uvicorn-worker)."""
    return MODULE_CHOICES.get(package, (module_of(package),))


def server_modules(packages: Iterable[str]) -> tuple[str, ...]:
    """What to ask a probe for, to know which of the servers' `packages` an environment has."""
    return tuple(dict.fromkeys(m for p in packages for m in modules_of(p)))


def lacks(info: PythonInfo, package: str) -> bool:
    """Whether the environment has none of the modules that give what `package` gives."""
    return all(m in info.absent for m in modules_of(package))


@functools.cache
def server_side_path() -> str:
    """A directory of links to the packages a server process imports: first on another
    environment's path, so that it needs nothing of mwbench installed. In the scratch directory."""
    import middleware
    import targets

    shim = Path(scratch_directory()) / "server-side"
    shim.mkdir()
    harness = Path(__file__).resolve().parents[1]
    for package in (harness, Path(targets.__file__).parent, Path(middleware.__file__).parent):
        (shim / package.name).symlink_to(package, target_is_directory=True)
    return str(shim)


def environment_for(python: str | None) -> dict[str, str]:
    """What a process of `python` needs in its environment to import the server-side code: {}
    for the harness's own interpreter, where it is installed."""
    if python is None or python == sys.executable:
        return {}
    before = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": os.pathsep.join([server_side_path(), *([before] if before else [])])}


@dataclass(frozen=True)
class Readiness:
    """What an environment can serve: each target (on its own server) and each server, ready or
    what it lacks."""

    info: PythonInfo
    targets: dict[str, str]  # target -> "" when ready, else why not
    servers: dict[str, str]  # server -> "" when ready, else why not

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "targets": self.targets, "servers": self.servers}


def readiness(python: Python) -> Readiness:
    """Every target and server of the tables, as `python` has them: for `harness env`."""
    info = probe(
        python,
        packages=tuple(dict.fromkeys((*FRAMEWORKS, *server_packages()))),
        modules=server_modules(server_packages()),
        imports=tuple(t.module for t in TARGETS.values()),
    )
    lacking = {
        name: ", ".join(p for p in server.packages if lacks(info, p))
        for name, server in SERVERS.items()
    }
    servers = {name: f"lacks {what}" if what else "" for name, what in lacking.items()}
    targets = {}
    for name, target in TARGETS.items():
        why = info.broken.get(target.module)
        if why is not None:
            targets[name] = f"cannot import it: {why}"
        elif lacking[target.server]:
            targets[name] = f"its server {target.server} lacks {lacking[target.server]}"
        else:
            targets[name] = ""
    return Readiness(info, targets, servers)
