"""The tree keeps the shape docs/architecture.md describes: layers as packages, imports only
downwards (the import-linter contracts in pyproject.toml), one folder per experiment, and code a
newcomer can read (ruff's complexity and argument-count rules, short functions)."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "harness"
MAX_FUNCTION_LINES = 60
MAX_FMT_SKIPS = 20  # kept only where alignment carries meaning (a table of constants)
# The modules every experiment has, one role each: the same name in two experiments is the same
# thing for each (its plan, its run, what it found, what it writes, the diff of two of them).
EXPERIMENT_ROLES = {"plan", "run", "result", "render", "diff"}
# And the one frozen object a layer is asked with: load's LoadSettings, serving's ServeSettings.
LAYER_ROLES = {"settings"}


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: make setup installs the dev dependencies")
    return found


def test_the_import_contracts_hold() -> None:
    run = subprocess.run(
        [_tool("lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "0 broken" in run.stdout


def test_ruff_finds_nothing_complex_or_overlong() -> None:
    # C901 (complexity) and PLR0913 (arguments) at the limits pyproject.toml sets, with the rest.
    run = subprocess.run(
        [_tool("ruff"), "check", "harness", "targets", "middleware"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def test_every_package_says_what_it_may_import() -> None:
    for init in HARNESS.glob("**/__init__.py"):
        text = init.read_text(encoding="utf-8")
        assert text.startswith('"""') and "import" in text.split('"""')[1].lower(), init


def _modules(package: Path) -> list[Path]:
    return [p for p in package.rglob("*.py") if "__pycache__" not in p.parts]


def test_no_function_is_too_long_to_read() -> None:
    long = {}
    for path in [*_modules(HARNESS), *_modules(ROOT / "targets"), *_modules(ROOT / "middleware")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.name}"] = lines
    assert long == {}


def test_the_formatter_lays_out_the_code() -> None:
    skips = {
        str(path.relative_to(ROOT)): n
        for path in _modules(HARNESS)
        if (n := path.read_text(encoding="utf-8").count("# fmt: skip"))
    }
    assert sum(skips.values()) <= MAX_FMT_SKIPS, skips


def test_no_file_name_means_two_things() -> None:
    by_name: dict[str, list[Path]] = defaultdict(list)
    for path in _modules(HARNESS):
        if path.stem != "__init__":
            by_name[path.stem].append(path.relative_to(HARNESS))
    twice = {}
    for name, paths in by_name.items():
        commands = [p for p in paths if p.parts[0] == "cli"]
        others = [p for p in paths if p.parts[0] != "cli"]
        roles = (all(p.parts[0] == "experiments" for p in others) and name in EXPERIMENT_ROLES) or (
            len({p.parts[0] for p in others}) == len(others) and name in LAYER_ROLES
        )
        # A command's module is named after the command, and says what it is the click layer of.
        wraps = len(commands) == 1 and _names_one_of(commands[0], others)
        if len(paths) > 1 and not ((len(others) < 2 or roles) and (not commands or wraps)):
            twice[name] = [str(p) for p in paths]
    assert twice == {}


def _names_one_of(command: Path, others: list[Path]) -> bool:
    doc = ast.get_docstring(ast.parse((HARNESS / command).read_text(encoding="utf-8"))) or ""
    return any(".".join(("harness", *p.with_suffix("").parts)) in doc for p in others)


def test_only_rendering_modules_draw() -> None:
    drawing = []
    for path in _modules(HARNESS):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = [
            alias.name
            for node in ast.walk(tree)
            if isinstance(node, ast.Import | ast.ImportFrom)
            for alias in (
                node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
            )
        ]
        if any(name.split(".")[0] == "matplotlib" for name in names):
            drawing.append(path.relative_to(HARNESS))
    assert drawing and all(
        p.parts[0] == "render" or p.stem.startswith("render") for p in drawing
    ), drawing


def test_harness_run_imports_no_measure_it_does_not_use(tmp_path: Path) -> None:
    # A sweep of a recorded wrk, in a fresh interpreter: what `harness run` had to import.
    fake_wrk = ROOT / "tests" / "fixtures" / "wrk" / "fake_wrk.py"
    script = (
        "import sys\n"
        "from harness.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "print(' '.join(m for m in sys.modules if m.startswith('harness.')))\n"
    )
    args = ["run", "http://127.0.0.1:8000/healthz", "-d", str(tmp_path), "-n", "job"]
    args += ["--wrk", str(fake_wrk), "--warmup", "0", "-c", "8", "--no-charts"]
    env = {**os.environ, "FAKE_WRK_PLAN": "8=ceiling_latency"}
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = set(done.stdout.split())
    assert "harness.experiments.sweep.run" in loaded  # it did sweep
    # The SLO's grammar is --slo's (its help names the default); no measure, no compare.
    assert {m for m in loaded if m.startswith("harness.measures.")} <= {"harness.measures.slo"}
    assert not {m for m in loaded if m.startswith("harness.experiments.compare")}
