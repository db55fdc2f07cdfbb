"""A user's Django project through --app: written outside the package (examples/django_default
copied to tmp_path), its settings.MIDDLEWARE as layers, toggled in real gunicorn and uvicorn
workers, a short real compare, and each bad input one line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.serving.apps import AppInfo, describe_app, target_for
from harness.serving.servers import running
from harness.serving.userapp.spec import AppLoadError, AppSpec
from tests.conftest import request

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "django_default"
DEFAULTS = [
    "SecurityMiddleware", "SessionMiddleware", "CommonMiddleware", "CsrfViewMiddleware",
    "AuthenticationMiddleware", "MessageMiddleware", "XFrameOptionsMiddleware",
]  # fmt: skip
SHORT = ["--duration", "1s", "--warmup", "0", "-c", "16", "--no-ceiling", "--no-charts"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("django") / "project"
    shutil.copytree(EXAMPLE, where)
    return where


def describe(project: Path, handler: str) -> AppInfo:
    return describe_app(AppSpec(f"mysite/{handler}.py:application", False, str(project)))


@pytest.mark.parametrize("handler", ["wsgi", "asgi"])
def test_the_layers_are_settings_middleware_in_order_with_their_capability(
    project: Path, handler: str
) -> None:
    info = describe(project, handler)
    assert info.interface == handler
    assert list(info.layer_names) == DEFAULTS
    assert {layer["kind"] for layer in info.layers} == {"MIDDLEWARE"}
    details = [layer["detail"] for layer in info.layers]
    if handler == "wsgi":
        assert all(d.startswith("sync+async; django.") for d in details)
    else:  # MiddlewareMixin's __acall__ runs each process_* hook through sync_to_async
        assert details[0].startswith("sync+async, but its sync hooks run in a thread each")
        assert "(request, response)" in details[0] and "(response)" in details[-1]
    result = CliRunner().invoke(
        main, ["layers", "--app", f"mysite/{handler}.py:application", "--app-dir", str(project)]
    )
    assert result.exit_code == 0, result.output
    assert all(name in result.output for name in DEFAULTS)


def test_a_sync_only_middleware_is_said_to_be_adapted_under_asgi(tmp_path: Path) -> None:
    (tmp_path / "proj.py").write_text(
        "from django.conf import settings\n"
        "settings.configure(ROOT_URLCONF='proj', ALLOWED_HOSTS=['*'], MIDDLEWARE=[\n"
        "    'proj.Plain', 'django.middleware.common.CommonMiddleware'])\n"
        "from django.core.asgi import get_asgi_application\n"
        "urlpatterns = []\n"
        "class Plain:\n"
        "    def __init__(self, get_response):\n"
        "        self.get_response = get_response\n"
        "    def __call__(self, request):\n"
        "        return self.get_response(request)\n"
        "application = get_asgi_application()\n"
    )
    info = describe_app(AppSpec("proj.py:application", False, str(tmp_path)))
    assert info.layer_names == ("Plain", "CommonMiddleware")
    assert info.layers[0]["detail"].startswith("sync only: Django runs it in a thread")


def test_wsgi_layers_toggled_in_a_real_gunicorn_worker(project: Path) -> None:
    target = target_for(describe(project, "wsgi"))
    with running(target, stack=("SecurityMiddleware",), ready_path="/") as server:
        reply = request(server.url, path="/")
        assert reply.status == 200 and json.loads(reply.body) == {"status": "ok"}
        assert reply.headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware's
        assert "X-Frame-Options" not in reply.headers  # XFrameOptionsMiddleware is dropped


def test_asgi_layers_and_a_sync_only_extra_in_a_real_uvicorn_worker(project: Path) -> None:
    target = target_for(describe(project, "asgi"))
    stack = ("XFrameOptionsMiddleware", "noop.py:SyncOnlyNoop")
    with running(target, stack=stack, ready_path="/") as server:
        reply = request(server.url, path="/")
        assert reply.status == 200 and json.loads(reply.body) == {"status": "ok"}
        assert reply.headers["X-Frame-Options"] == "DENY"
        assert "X-Content-Type-Options" not in reply.headers  # SecurityMiddleware is dropped


def test_a_short_real_compare_of_two_sets(project: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["compare", "--app", "mysite/wsgi.py:application", "--app-dir", str(project),
         "-m", "none,XFrameOptionsMiddleware+spin:1ms", "-r", "1", "--no-baseline",
         "-d", str(tmp_path), *SHORT],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    by_name = {s["name"]: s for s in data["sets"]}
    assert set(by_name) == {"none", "XFrameOptionsMiddleware+spin:1ms"}
    # The Django middleware of known cost ran in the chain: the set costs its 1 ms (a
    # margin for the noise of one round on a shared machine).
    cost = by_name["XFrameOptionsMiddleware+spin:1ms"]["overhead_us_per_request"]
    assert cost > 600, cost


# ---------------------------------------------------------------------------------------------
# bad input: one line each, before any server starts

_CONFIGURED = (
    "from django.conf import settings\n"
    "settings.configure(ROOT_URLCONF=__name__, ALLOWED_HOSTS={hosts}, MIDDLEWARE={mw})\n"
    "from django.core.wsgi import get_wsgi_application\n"
    "urlpatterns = []\n"
    "application = get_wsgi_application()\n"
)


@pytest.mark.parametrize(
    ("source", "args", "expected"),
    [
        ("from django.core.wsgi import get_wsgi_application\n"
         "application = get_wsgi_application()\n", [],
         "Django's settings are not configured: set DJANGO_SETTINGS_MODULE (or --django-settings"),
        (_CONFIGURED.format(hosts="['*']", mw="['no_such_pkg.mw.Timing']"), [],
         "the MIDDLEWARE entry 'no_such_pkg.mw.Timing' does not import: ModuleNotFoundError"),
        (_CONFIGURED.format(hosts="['example.com']", mw="[]"), [],
         "ALLOWED_HOSTS ['example.com'] refuses 127.0.0.1, the host every request of the harness "
         "names: the project would answer 400 (Bad Request); add '127.0.0.1' to ALLOWED_HOSTS"),
        ("import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
         "from django.core.wsgi import get_wsgi_application\n"
         "application = get_wsgi_application()\n", ["--django-settings", "nosite.settings"],
         "DJANGO_SETTINGS_MODULE=nosite.settings does not import: no module named 'nosite'"),
    ],
    ids=["not-configured", "middleware-import", "allowed-hosts", "settings-module"],
)  # fmt: skip
def test_bad_projects_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, args: list[str], expected: str
) -> None:
    # --django-settings sets the variable for the command's process (this one): undone after.
    monkeypatch.setenv("DJANGO_SETTINGS_MODULE", "")
    monkeypatch.delenv("DJANGO_SETTINGS_MODULE")
    (tmp_path / "site.py").write_text(source)
    result = CliRunner().invoke(
        main, ["layers", "--app", "site.py:application", "--app-dir", str(tmp_path), *args]
    )
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 3


def test_a_layer_not_in_middleware_lists_the_names(project: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["compare", "--app", "mysite/asgi.py:application", "--app-dir", str(project),
         "-m", "none,GZipMiddleware", "-d", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "unknown middleware 'GZipMiddleware'; valid: none, all, " + ", ".join(DEFAULTS) in (
        " ".join(result.output.split())
    )


def test_django_missing_from_the_serving_environment_names_the_package(
    project: Path, tmp_path: Path
) -> None:
    from tests.test_pythons import make_env

    python = make_env(tmp_path / "no-django", patch="import sys\nsys.modules['django'] = None\n")
    with pytest.raises(AppLoadError, match=r"Django is not installed in the environment") as info:
        describe_app(AppSpec("mysite/wsgi.py:application", False, str(project)), python=str(python))
    assert "pip install Django" in str(info.value) and "\n" not in str(info.value)
