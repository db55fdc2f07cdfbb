"""The environment probe (--python): an environment whose uvicorn still ships its gunicorn worker
(uvicorn.workers, before uvicorn-worker) serves with it; a program that is no Python is said in
one short line, without the probe's own arguments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.experiments.compare.contenders import Contender
from harness.experiments.compare.environments import check_pythons
from harness.serving.pythons import (
    SAID_LIMIT,
    PythonError,
    environment_for,
    find_python,
    probe,
    readiness,
)
from targets.table import get_target

BASE = Path(getattr(sys, "_base_executable", sys.executable))
# uvicorn's last release with its own gunicorn worker and no uvicorn-worker beside it
OLD_UVICORN = "uvicorn<0.30"


def make_env(where: Path, hidden: tuple[str, ...]) -> Path:
    """A virtualenv without pip that sees this one's packages (a .pth line) but not `hidden`
    modules: their imports fail there, as if not installed."""
    subprocess.run([str(BASE), "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    purelib = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(subprocess.check_output([str(python), "-c", purelib], text=True).strip())
    (site / "shared.pth").write_text(sysconfig.get_path("purelib") + "\n")
    hide = "".join(f"sys.modules[{m!r}] = None\n" for m in hidden)
    (site / "sitecustomize.py").write_text(f"import sys\n{hide}")
    return python


@pytest.fixture(scope="module")
def standins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("standins")
    return {
        # uvicorn's gunicorn worker only as uvicorn.workers, as before uvicorn 0.30
        "old-uvicorn": make_env(root / "old-uvicorn", ("uvicorn_worker",)),
        "no-worker": make_env(root / "no-worker", ("uvicorn_worker", "uvicorn.workers")),
    }


def _raw_asgi(python: Path) -> dict[Contender, object]:
    target = get_target("raw-asgi")
    chosen = find_python(str(python))
    return {Contender(target, (), "set", None, chosen.name): target.server_for(None, None)}


def _worker_module(python: Path) -> str:
    """Where the class gunicorn is given comes from, in that environment."""
    code = "import harness.serving.gunicorn_uvicorn as w; print(w.UvicornWorker.__module__)"
    env = {**os.environ, **environment_for(str(python))}
    return subprocess.check_output([str(python), "-c", code], text=True, env=env).strip()


def test_the_probe_takes_uvicorns_own_worker_and_the_server_uses_it(
    standins: dict[str, Path],
) -> None:
    old = standins["old-uvicorn"]
    serving = _raw_asgi(old)
    (info,) = check_pythons([find_python(str(old))], serving)  # type: ignore[arg-type]
    assert "uvicorn_worker" in info.absent and "uvicorn.workers" not in info.absent
    ready = readiness(find_python(str(old)))
    assert ready.servers["gunicorn-uvicorn"] == "" and ready.targets["raw-asgi"] == ""
    assert _worker_module(old) == "uvicorn.workers"
    # here, uvicorn-worker is installed: the class is its own
    assert _worker_module(Path(sys.executable)).startswith("uvicorn_worker")


def test_an_environment_with_neither_worker_is_refused(standins: dict[str, Path]) -> None:
    bare = standins["no-worker"]
    with pytest.raises(PythonError, match=r"has no uvicorn-worker, which gunicorn-uvicorn needs"):
        check_pythons([find_python(str(bare))], _raw_asgi(bare))  # type: ignore[arg-type]
    assert readiness(find_python(str(bare))).servers["gunicorn-uvicorn"] == "lacks uvicorn-worker"


@pytest.fixture(scope="module")
def old_uvicorn(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtualenv with uvicorn 0.29 and gunicorn from the package index (about a second here
    with pip's cache): the real thing the stand-in above imitates."""
    where = tmp_path_factory.mktemp("old-uvicorn") / "env"
    subprocess.run([str(BASE), "-m", "venv", "--without-pip", str(where)], check=True)
    python = where / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
           "--disable-pip-version-check", "--retries", "1", "--timeout", "20",
           OLD_UVICORN, "gunicorn"]  # fmt: skip
    done = subprocess.run(pip, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        said = done.stderr + done.stdout
        unreachable = ("No matching distribution", "Could not find a version", "NewConnectionError",
                       "Max retries exceeded", "Temporary failure in name resolution")  # fmt: skip
        if any(sign in said for sign in unreachable):
            pytest.skip(f"pip cannot reach the package index for {OLD_UVICORN}")
        pytest.fail(f"pip install {OLD_UVICORN} gunicorn failed:\n{said[-2000:]}")
    return python


def test_an_old_uvicorn_environment_serves_a_compare(old_uvicorn: Path, tmp_path: Path) -> None:
    info = probe(find_python(str(old_uvicorn)), packages=("uvicorn", "uvicorn-worker"))
    assert info.packages["uvicorn"].startswith("0.29") and "uvicorn-worker" not in info.packages
    out = tmp_path / "out"
    result = CliRunner().invoke(main, [
        "compare", "--python", str(old_uvicorn), "-t", "raw-asgi", "-m", "none", "-r", "1",
        "--duration", "1s", "--warmup", "0", "--no-ceiling", "-d", str(out),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    (entry,) = json.loads((out / "compare.json").read_text())["sets"]
    assert entry["server"] == "gunicorn-uvicorn"
    assert entry["python"] == find_python(str(old_uvicorn)).name


@pytest.mark.parametrize("program", ["/bin/ls", "/bin/echo", "/bin/cat", "/bin/true"])
def test_a_program_that_is_no_python_is_one_short_line(program: str) -> None:
    asked = {"packages": ("flask", "starlette"), "modules": ("gunicorn",), "imports": ()}
    with pytest.raises(PythonError) as raised:
        probe(find_python(program), **asked)
    said = str(raised.value)
    assert said.startswith(f"{program} is not a Python interpreter here (")
    assert "\n" not in said and len(said) < len(program) + 40 + SAID_LIMIT, said
    assert "packages" not in said and "import json" not in said, said


def test_python_bin_ls_on_the_command_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "-m", "none", "--python",
                                       "/bin/ls", "-d", str(tmp_path / "never")])  # fmt: skip
    assert result.exit_code == 2 and "Traceback" not in result.output
    (error,) = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert "/bin/ls is not a Python interpreter here (it said: /bin/ls: cannot access" in error
    assert "packages" not in error and len(error) < 160, error
