"""How py-spy's samples are read for a target: its full filenames shortened to module paths, and
the attribution rules (a user's app adds its own layers and code)."""

from __future__ import annotations

import os
from collections import Counter

from harness.experiments.profile.attribution import DEFAULT_RULES, Rules, module_path
from harness.experiments.profile.collapsed import Frame, Stacks
from harness.serving.apps import describe_app
from harness.serving.userapp.spec import AppLoadError, AppSpec
from targets.table import Target


def short_files(stacks: Stacks, app_root: str | None) -> Stacks:
    """py-spy's full filenames (it records with --full-filenames) as module paths: `threading.py`,
    `opentelemetry/sdk/trace/__init__.py` (py-spy's own short names drop a namespace package's
    prefix: `trace/__init__.py`), the app's own files relative to its directory."""
    short: dict[str, str] = {}
    out: Stacks = Counter()
    for stack, count in stacks.items():
        frames = []
        for frame in stack:
            if frame.file not in short:
                short[frame.file] = module_path(frame.file, app_root)
            frames.append(Frame(frame.function, short[frame.file], frame.line))
        out[tuple(frames)] += count
    return out


def rules_for(target: Target, stack: tuple[str, ...]) -> Rules:
    """The attribution tables; a user's app adds the layers of `stack`, with the code they
    inherit (described again: the Target keeps only their names), and its own code."""
    if not target.is_user_app or target.app is None:
        return DEFAULT_RULES
    try:
        info = describe_app(AppSpec(target.app, target.factory, target.app_dir))
        bases = {layer["name"]: tuple(layer.get("bases", ())) for layer in info.layers}
    except AppLoadError:
        bases = {}
    chosen = tuple(name for name in stack if name in target.layers)
    return Rules(
        app_layers=chosen,
        app_bases={name: bases.get(name, ()) for name in chosen},
        app_root=(target.app_dir or os.getcwd()) + "/",
    )
