"""Python environments as an axis (--python): environments made here, from this interpreter's own
base with nothing downloaded, serving through the harness's server-side code without mwbench
installed in them; one has Starlette's Response patched 100 µs slower, and compare finds it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import psutil
import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.compare.result import CompareReport
from harness.machine.scratch import scratch_directory
from harness.serving.pythons import PythonError, find_python, parse_pythons, probe
from harness.serving.servers import running
from harness.serving.settings import ServeSettings
from tests.conftest import request

ROOT = Path(__file__).resolve().parent.parent
BASE = Path(getattr(sys, "_base_executable", sys.executable))

# Starlette's Response, 100 µs of CPU slower: what an upgrade or an SDK's patch might cost.
SLOWER = """\
import time

import starlette.responses

_init = starlette.responses.Response.__init__


def _slower(self, *args, **kwargs):
    until = time.perf_counter() + 100e-6
    while time.perf_counter() < until:
        pass
    _init(self, *args, **kwargs)


starlette.responses.Response.__init__ = _slower
"""


def make_env(where: Path, *, shared: bool = True, patch: str | None = None) -> Path:
    """A virtualenv without pip; `shared`: it sees this one's packages (by a .pth line, which
    does not run their .pth files: mwbench's editable install stays out); `patch` is its
    sitecustomize."""
    subprocess.run([str(BASE), "-m", "venv", "--without-pip", str(where)], check=True)
    where_site = "import sysconfig; print(sysconfig.get_path('purelib'))"
    python = where / "bin" / "python"
    site = Path(subprocess.check_output([str(python), "-c", where_site], text=True).strip())
    if shared:
        (site / "shared.pth").write_text(sysconfig.get_path("purelib") + "\n")
    if patch is not None:
        (site / "sitecustomize.py").write_text(patch)
    return python


@pytest.fixture(scope="module")
def envs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("envs")
    return {
        "same": make_env(root / "same"),
        "slower": make_env(root / "slower", patch=SLOWER),
        "bare": make_env(root / "bare", shared=False),
        # everything but FastAPI: an import of it fails there
        "no-fastapi": make_env(
            root / "no-fastapi", patch="import sys\nsys.modules['fastapi'] = None\n"
        ),
    }


def test_an_environment_without_mwbench_serves_through_the_server_side_path(
    envs: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A clean environment: out of the checkout (whose packages the cwd would give it), and no
    # PYTHONPATH of the caller's (a CI's PYTHONPATH=. would hand the server the repository).
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PYTHONPATH", raising=False)
    for module in ("harness", "targets", "middleware"):
        plain = subprocess.run([str(envs["same"]), "-c", f"import {module}"], capture_output=True)
        assert plain.returncode != 0, f"the environment must not have {module} on its own"
    with running("starlette", ServeSettings(python=str(envs["same"])), stack=("request-id",)) as s:
        reply = request(s.url)
        assert reply.status == 200 and reply.headers["X-Request-ID"]
        commands = [p.cmdline() for p in s.processes()]
        assert commands[0][0] == str(envs["same"]), commands
        environ = psutil.Process(s.worker_pids()[0]).environ()
    # its path is the server-side directory alone, and the server's packages come from there
    (shim,) = environ["PYTHONPATH"].split(os.pathsep)
    assert Path(shim).parent == Path(scratch_directory()) and str(ROOT) not in shim
    where = "import targets, middleware; print(targets.__file__); print(middleware.__file__)"
    found = subprocess.run([str(envs["same"]), "-c", where], capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": shim}, check=True)  # fmt: skip
    assert [Path(line).parent.parent for line in found.stdout.split()] == [Path(shim)] * 2


def test_an_environment_says_its_versions(envs: dict[str, Path]) -> None:
    info = probe(find_python(str(envs["slower"])), packages=("starlette", "no-such-dist"),
                 modules=("uvicorn", "no_such_module"), imports=("targets.flask_app",))  # fmt: skip
    assert info.version == ".".join(map(str, sys.version_info[:3])) and info.supported
    assert info.packages == {"starlette": metadata.version("starlette")}
    assert info.absent == ("no_such_module",) and info.broken == {}
    # its sitecustomize, by its source: the patch that changes no version
    source = (envs["slower"].parent.parent / "lib").glob("python*/site-packages/sitecustomize.py")
    digest = hashlib.sha256(next(source).read_bytes()).hexdigest()[:12]
    assert info.startup["sitecustomize"] == f"sha256:{digest}"
    same = probe(find_python(str(envs["same"])))
    assert same.startup.get("sitecustomize") != info.startup["sitecustomize"]
    bare = probe(find_python(str(envs["bare"])), imports=("targets.flask_app",))
    assert "No module named 'flask'" in bare.broken["targets.flask_app"]


def test_names_and_paths_of_environments(envs: dict[str, Path], tmp_path: Path) -> None:
    same, slower = envs["same"], envs["slower"]
    found = parse_pythons(f"{same},new={slower.parent.parent}")
    assert [(p.name, p.path) for p in found] == [("same", str(same)), ("new", str(slower))]
    spaced = tmp_path / "my venv" / "bin"
    spaced.mkdir(parents=True)
    (spaced / "python").symlink_to(same)
    assert find_python(str(spaced.parent)).name == "my-venv"  # a name fit for file names
    for text, said in [
        (f"{same},{same}", "two environments are named same: name them, NAME=PATH"),
        (f"a={same},a={slower}", "two environments are named a: give each its own name"),
        (str(tmp_path / "nope"), "no Python interpreter at"),
        ("bad name=" + str(same), "environment name 'bad name'"),
    ]:
        with pytest.raises(PythonError, match=said):
            parse_pythons(text)


def test_compare_across_environments_finds_the_patched_module(
    envs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "envs"
    result = CliRunner().invoke(main, [
        "compare", "-t", "starlette", "-m", "none", "-r", "3", "--duration", "1s",
        "--no-ceiling", "--python", f"{envs['same']},{envs['slower']}", "-d", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "environments, each against same" in result.output
    report = CompareReport.load(out / "compare.json")
    assert report.pythons == ["same", "slower"]
    assert [e.label for e in report.entries] == [
        "same:none", "same:raw-asgi:none", "slower:none", "slower:raw-asgi:none",
    ]  # fmt: skip
    # Each environment against its own raw baseline; across, each against the first's.
    assert report.find("slower:none").reference.label == "slower:raw-asgi:none"  # type: ignore[union-attr]
    rows = {(row.name, row.value): row for row in report.env_rows}
    framework = rows[("none", "slower")].difference("cpu")
    raw = rows[("raw-asgi:none", "slower")].difference("cpu")
    assert framework is not None and raw is not None
    assert framework.significant and framework.median > 60, framework
    assert abs(raw.median) < framework.median / 3, (raw, framework)
    data = json.loads((out / "compare.json").read_text())
    assert {row["name"] for row in data["python_comparison"]} == {"none", "raw-asgi:none"}
    recorded = {one["name"]: one for one in data["settings"]["pythons"]}
    assert recorded["slower"]["path"] == str(envs["slower"])
    assert recorded["slower"]["packages"]["starlette"] == metadata.version("starlette")
    # no version differs: what does is said, the start-up hook that holds the patch
    assert "the environments (what differs: sitecustomize)" in result.output
    assert (out / "environments.png").stat().st_size > 0
    assert (out / "slower_starlette_none_r3.dat").exists()


def test_an_app_is_described_in_each_environment(envs: dict[str, Path], tmp_path: Path) -> None:
    from harness.experiments.compare.plan import CompareRequest, plan_compare
    from harness.serving.apps import describe_app, target_for
    from harness.serving.userapp.spec import AppSpec

    spec = AppSpec("tests/apps/shop_fastapi.py:app", False, str(ROOT))
    info = describe_app(spec, python=str(envs["same"]))
    assert info.imports["fastapi"] == metadata.version("fastapi")
    asked = CompareRequest(
        targets=[target_for(info)],
        sets=[()],
        pythons=[str(envs["same"])],
        ceiling=False,
        out_dir=tmp_path / "app",
    )
    plan = plan_compare(asked)
    assert plan.pythons[0].packages["fastapi"] == metadata.version("fastapi")
    with pytest.raises(PythonError, match=r"^no-fastapi: .*fastapi"):
        plan_compare(CompareRequest(
            targets=[target_for(info)], sets=[()], ceiling=False,
            pythons=[str(envs["same"]), str(envs["no-fastapi"])], out_dir=tmp_path / "a2",
        ))  # fmt: skip


def _one_error(args: list[str]) -> str:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_environments_that_cannot_serve_are_one_line_errors_before_any_load(
    envs: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "never"
    compare = ["compare", "-t", "flask", "-m", "none", "-d", str(out), "--python"]
    said = _one_error([*compare, f"{envs['same']},{envs['bare']}"])
    assert "bare" in said and "gunicorn" in said and "install it there" in said
    said = _one_error([*compare, str(tmp_path / "nowhere" / "python")])
    assert "--python" in said and "no Python interpreter at" in said
    said = _one_error(["serve", "-t", "flask", "--python", str(envs["bare"])])
    assert said.startswith("Error: --python: ") and "gunicorn" in said
    # an interpreter too old for the servers' code: refused by what it answers, on any host
    said = _one_error([*compare, f"{envs['same']},{_old_python(tmp_path, '3.9.18')}"])
    assert "CPython 3.9.18" in said and "3.10 or newer" in said, said
    assert not list(out.glob("*.json")), "nothing was measured"


def test_harness_env_says_what_an_environment_lacks(envs: dict[str, Path]) -> None:
    result = CliRunner().invoke(main, ["env", "--python", str(envs["bare"]), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["packages"] == {}
    assert "No module named 'flask'" in data["targets"]["flask"]
    assert data["servers"]["uvicorn"] == "lacks uvicorn, uvloop, httptools"
    shared = CliRunner().invoke(main, ["env", "--python", str(envs["same"])])
    assert shared.exit_code == 0, shared.output
    assert "target starlette" in shared.output and "lacks" not in shared.output


def _old_python(where: Path, version: str) -> Path:
    """An interpreter that answers the probe as CPython `version` would (the servers' code
    needs 3.10): a script, so that the refusal is tested on any host, with no old Python."""
    old = where / f"python{version.rsplit('.', 1)[0]}"
    answer = {"version": version, "implementation": "CPython", "prefix": str(where),
              "packages": {}, "absent": [], "broken": {}}  # fmt: skip
    old.write_text(f"#!/bin/sh\necho '{json.dumps(answer)}'\n")
    old.chmod(0o755)
    return old


def test_harness_env_refuses_an_unsupported_python_in_json_too(tmp_path: Path) -> None:
    old = _old_python(tmp_path, "3.8.10")
    for args in ([], ["--json"]):
        said = _one_error(["env", "--python", str(old), *args])
        assert "CPython 3.8.10" in said and "3.10 or newer" in said, said


def test_harness_env_takes_one_interpreter(envs: dict[str, Path]) -> None:
    said = _one_error(["env", "--python", f"{envs['same']},{envs['slower']}"])
    assert said.endswith("one interpreter here, not a list"), said
