"""A user's app as a target: described in a subprocess before anything is served.

The description (interface, framework, layers, what is not toggled) comes from the same loader the
server process runs (harness.serving.userapp.entry), in a child interpreter: the app's import side
effects stay out of the harness, and a bad spec is one line here, before any server starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.serving.pythons import environment_for
from harness.serving.userapp.spec import AppLoadError, AppSpec, split_spec
from targets.table import Target, app_target

DESCRIBE_TIMEOUT = 60.0


@dataclass(frozen=True)
class AppInfo:
    spec: AppSpec
    interface: str
    framework: str  # module.Class of the framework app, or of the callable
    layers: tuple[dict[str, str], ...]
    untoggled: tuple[str, ...] = field(default=())
    # The distributions the app imported, with their versions, in the environment it was
    # described in.
    imports: dict[str, str] = field(default_factory=dict)
    # Instrumentation that patches the app from outside, not a layer (Sentry, OpenTelemetry's
    # instrumentors): {name, package, detail} each.
    instrumentation: tuple[dict[str, str], ...] = field(default=())

    @property
    def layer_names(self) -> tuple[str, ...]:
        return tuple(layer["name"] for layer in self.layers)

    @property
    def name(self) -> str:
        """A short, file-safe name: the module or file the app comes from."""
        source, _ = split_spec(self.spec.target)
        stem = Path(source).stem if source.endswith(".py") or "/" in source else source
        return "".join(c if c.isalnum() or c in "._-" else "-" for c in stem) or "app"


def describe_app(
    spec: AppSpec, extras: tuple[str, ...] = (), *, python: str | None = None
) -> AppInfo:
    """Import the app in a child interpreter (`python`, else the harness's own) and say what it
    is; AppLoadError (one line) when it cannot be served, or when an extra middleware does not
    fit it."""
    app_dir = os.path.abspath(spec.app_dir or os.getcwd())
    command = [python or sys.executable, "-m", "harness.serving.userapp.entry", spec.target]
    command += ["--app-dir", app_dir, "--extra", ",".join(extras)]
    if spec.factory:
        command.append("--factory")
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=DESCRIBE_TIMEOUT,
            stdin=subprocess.DEVNULL,
            cwd=app_dir,
            env={**os.environ, **environment_for(python)},
        )
    except subprocess.TimeoutExpired:
        raise AppLoadError(
            f"importing {spec.target} took more than {DESCRIBE_TIMEOUT:g}s"
        ) from None
    data = _last_json(done.stdout)
    if data is None:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AppLoadError(f"describing {spec.target} failed: {last}")
    if "error" in data:
        raise AppLoadError(str(data["error"]))
    return AppInfo(
        spec=AppSpec(spec.target, spec.factory, app_dir),
        interface=data["interface"],
        framework=data["framework"],
        layers=tuple(data["layers"]),
        untoggled=tuple(data["untoggled"]),
        imports=dict(data.get("imports") or {}),
        instrumentation=tuple(data.get("instrumentation") or ()),
    )


def _last_json(text: str) -> dict[str, Any] | None:
    # The app may print at import; the loader's answer is the last line.
    for line in reversed(text.strip().splitlines()):
        try:
            found = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(found, dict):
            return found
    return None


def target_for(info: AppInfo) -> Target:
    """The app as a target, served like the raw target of its interface and compared with it."""
    framework = info.framework.rpartition(".")[2] or info.framework
    return app_target(
        info.name,
        f"{framework} ({info.spec.target})",
        info.interface,
        app=info.spec.target,
        factory=info.spec.factory,
        app_dir=info.spec.app_dir,
        layers=info.layer_names,
    )
