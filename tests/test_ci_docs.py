"""docs/ci.md's workflows, run here. Both files are parsed and checked (a matrix of shards, a
merge that needs them, a diff gated with --max-regression and printed as Markdown), the doc shows
them as they are, and each pipeline's commands run in order, each job in its own workspace: main's
run stores the baseline, a pull request's run is gated on it. The workflows' compare is made
short (cpu for instructions: callgrind would take minutes; one 1 s round, two sets over two
shards); the CIs' artifacts and cache are directories, GitLab's API a server on loopback."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import click
import pytest

from harness.cli.main import main

yaml = pytest.importorskip(
    "yaml", reason="PyYAML reads the workflow files; it is not among mwbench's dependencies"
)

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "ci.md"
GITHUB = ROOT / "docs" / "ci" / "github-mwbench.yml"
GITLAB = ROOT / "docs" / "ci" / "gitlab-mwbench.yml"

# In place of the workflows' MWBENCH_ARGS. --no-tune: two pipelines run at once here (as two CIs
# would), and the idle-state tuning is one machine-wide setting.
SHORT = ("-t raw-asgi -m none,secure --measure cpu -r 1 --duration 1s --warmup 0 --no-ceiling "
         "-c 16 --no-tune")  # fmt: skip
SHARDS = 2
# In place of MWBENCH_GATE: an amount in µs, not a share. With one round, a set's overhead is one
# pairing's, judged by its median alone, and server CPU time on this shared VM moves by several µs
# between two runs: on an overhead of a few µs, a share of several hundred percent.
GATE = "200us"
SHIFT_US = 1000.0  # a regression no noise makes: +1 ms per request on none's every round
INSTALL = re.compile(r"(sudo )?apt-get (update"
                     r"|install( -y| --no-install-recommends)* valgrind wrk faketime)"
                     r"|python -m pip install \.")  # fmt: skip
TOKEN, JOB_TOKEN, PROJECT, MR = "api-token", "job-token", "42", "7"


def _load(path: Path) -> dict[Any, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


# --------------------------------------------------------------------------------------------------
# Running a script as both CIs do, and moving files as their artifacts and caches do


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """GitHub's `shell: bash` and GitLab's bash: -e and pipefail. Proxies are dropped so that
    curl goes straight to the loopback API; harness is this virtualenv's."""
    environ = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        cwd=cwd, env={**environ, **env}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _files(workspace: Path, patterns: list[str]) -> list[Path]:
    found: list[Path] = []
    for pattern in patterns:
        for hit in sorted(workspace.glob(pattern.rstrip("/"))):
            found += [hit] if hit.is_file() else sorted(f for f in hit.rglob("*") if f.is_file())
    return found


def _copy(files: list[Path], root: Path, into: Path) -> None:
    for f in files:
        (into / f.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, into / f.relative_to(root))


def _copy_tree(source: Path, into: Path) -> None:
    shutil.copytree(source, into, dirs_exist_ok=True)


@dataclass
class Job:
    name: str
    workspace: Path
    failed: bool = False
    ran: list[str] = field(default_factory=list)  # what each step was, in order
    skipped: list[str] = field(default_factory=list)
    installs: list[str] = field(default_factory=list)  # install steps, not run here
    output: str = ""  # every script's stdout and stderr

    def text(self, name: str) -> str:
        path = self.workspace / name
        return path.read_text() if path.exists() else ""

    def note(
        self, what: str, done: subprocess.CompletedProcess[str], tolerated: bool = False
    ) -> None:
        self.output += f"$ {what}\n{done.stdout}{done.stderr}"
        if done.returncode and not tolerated:
            self.failed = True


def _run_stage(run: Callable[[Any], Job], items: list[Any]) -> list[Job]:
    """A stage's jobs at once, as a CI's runners take them."""
    with ThreadPoolExecutor(max_workers=len(items)) as pool:
        return list(pool.map(run, items))


def _at_once(calls: list[Callable[[], object]]) -> list[object]:
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return [f.result() for f in [pool.submit(call) for call in calls]]


# --------------------------------------------------------------------------------------------------
# GitHub Actions


EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")


@dataclass
class GitHubRun:
    """One run of the workflow: its jobs, its artifacts; the cache outlives it (key -> directory,
    in the order saved)."""

    workflow: dict[str, Any]
    home: Path
    github: dict[str, str]
    cache: dict[str, Path]
    artifacts: dict[str, Path] = field(default_factory=dict)
    jobs: dict[str, list[Job]] = field(default_factory=dict)

    def run(self) -> GitHubRun:
        for name in ("shard", "merge"):
            self.run_job(name)
        return self

    def run_job(self, name: str) -> list[Job]:
        matrix = self.workflow["jobs"][name].get("strategy", {}).get("matrix")
        if matrix is None:
            self.jobs[name] = [self._job(name, {})]
        else:
            shards = list(range(1, SHARDS + 1))  # the matrix, made short
            assert list(matrix) == ["shard"]
            context = [{"matrix.shard": str(k), "strategy.job-total": str(SHARDS)} for k in shards]
            self.jobs[name] = _run_stage(lambda c: self._job(name, c), context)
        return self.jobs[name]

    def _job(self, name: str, matrix: dict[str, str]) -> Job:
        spec = self.workflow["jobs"][name]
        shard = matrix.get("matrix.shard")
        job = Job(name, self.home / (f"{name}-{shard}" if shard else name))
        job.workspace.mkdir(parents=True)
        needs = spec.get("needs", [])
        for needed in [needs] if isinstance(needs, str) else needs:
            if any(j.failed for j in self.jobs.get(needed, [])):
                job.failed, job.output = True, f"not run: {needed} failed"
                return job
        context = {**self.github, **matrix}
        summary = job.workspace.parent / f"{job.workspace.name}.summary.md"
        summary.touch()
        env = {**self.workflow["env"], "MWBENCH_ARGS": SHORT, "MWBENCH_GATE": GATE}
        for step in spec["steps"]:
            what = step.get("name") or step.get("uses", "")
            if not self._when(step.get("if", ""), context, job.failed):
                job.skipped.append(what)
                continue
            if "uses" in step:
                given = {k: self._sub(str(v), context) for k, v in step.get("with", {}).items()}
                job.ran.append(step["uses"])
                self._action(step["uses"].split("@")[0], given, job)
                continue
            script = self._sub(step["run"], context)
            if all(INSTALL.fullmatch(line.strip()) for line in script.strip().splitlines()):
                job.installs.append(script)
                continue
            step_env = {k: self._sub(str(v), context) for k, v in step.get("env", {}).items()}
            job.ran.append(script)
            done = _bash(script, job.workspace, {
                **env, **step_env, "GITHUB_STEP_SUMMARY": str(summary),
            })  # fmt: skip
            job.note(script, done, tolerated=bool(step.get("continue-on-error")))
        job.output += f"--- summary\n{summary.read_text()}"
        return job

    @staticmethod
    def _sub(text: str, context: dict[str, str]) -> str:
        def value(m: re.Match[str]) -> str:
            assert m[1] in context, f"the test cannot evaluate ${{{{ {m[1]} }}}}"
            return context[m[1]]

        return EXPRESSION.sub(value, text)

    @staticmethod
    def _when(condition: str, context: dict[str, str], failed: bool) -> bool:
        """A step's `if:`: terms joined by &&, each always() or `context == 'text'` (a `vars.`
        is unset here); without always(), a step after a failure is skipped."""
        holds, always = True, False
        for term in filter(None, (t.strip() for t in condition.split("&&"))):
            if term == "always()":
                always = True
                continue
            m = re.fullmatch(r"([\w.-]+) (==|!=) '([^']*)'", term)
            assert m, f"the test cannot evaluate if: {condition}"
            assert m[1] in context or m[1].startswith("vars."), f"unknown context {m[1]}"
            holds &= (context.get(m[1], "") == m[3]) == (m[2] == "==")
        return holds and (always or not failed)

    def _action(self, action: str, given: dict[str, str], job: Job) -> None:
        ws = job.workspace
        if action in ("actions/checkout", "actions/setup-python"):
            return  # the workspace stands for the checkout; this virtualenv for the Python
        if action == "actions/upload-artifact":
            files = _files(ws, given["path"].split())
            if not files:
                assert given.get("if-no-files-found") == "ignore", f"no files in {given['path']}"
                return
            assert given["name"] not in self.artifacts, f"artifact {given['name']} twice"
            # upload-artifact keeps paths below the files' deepest common directory
            root = Path(os.path.commonpath([f.parent for f in files]))
            self.artifacts[given["name"]] = self.home / "artifacts" / given["name"]
            _copy(files, root, self.artifacts[given["name"]])
        elif action == "actions/download-artifact":
            # a pattern downloads each artifact into its own directory, named after it
            for name in sorted(fnmatch.filter(self.artifacts, given["pattern"])):
                _copy_tree(self.artifacts[name], ws / given["path"] / name)
        elif action == "actions/cache/save":
            if given["key"] not in self.cache:  # a cache entry is never overwritten
                saved = self.home / "cache" / given["key"]
                _copy(_files(ws, [given["path"]]), ws, saved)
                self.cache[given["key"]] = saved
        elif action == "actions/cache/restore":
            prefixes = given.get("restore-keys", "").split()
            hit = given["key"] if given["key"] in self.cache else next(
                (k for k in reversed(self.cache) if any(k.startswith(p) for p in prefixes)), None
            )  # fmt: skip
            if hit is not None:
                _copy_tree(self.cache[hit], ws)
        else:
            raise AssertionError(f"the test does not stand in for {action}")


def _github_flow(home: Path) -> dict[str, GitHubRun]:
    workflow = _load(GITHUB)
    cache: dict[str, Path] = {}
    base = {"github.repository": "example/app", "github.token": "unused"}
    main_run = GitHubRun(workflow, home / "main", {
        **base, "github.event_name": "push", "github.sha": "c0ffee",
    }, cache).run()  # fmt: skip
    pr = {**base, "github.event_name": "pull_request", "github.sha": "beef",
          "github.event.pull_request.number": MR}  # fmt: skip
    pr_run = GitHubRun(workflow, home / "pr", {
        **pr, "github.event.pull_request.base.sha": "c0ffee",
    }, cache)  # fmt: skip
    # and a pull request that made main slower: its merge job, on main's shards made slower
    shards = {k: v for k, v in main_run.artifacts.items() if k.startswith("mwbench-shard-")}
    slower = GitHubRun(workflow, home / "slower", {
        **pr, "github.event.pull_request.base.sha": "unknown",  # restore-keys: main's latest
    }, cache, artifacts=_slower(shards, home / "slower-shards"))  # fmt: skip
    _at_once([pr_run.run, lambda: slower.run_job("merge")])
    return {"main": main_run, "pr": pr_run, "slower": slower}


def _slower(artifacts: dict[str, Path], into: Path) -> dict[str, Path]:
    """The shards' artifacts, none's every round SHIFT_US slower."""
    for name, path in artifacts.items():
        _copy_tree(path, into / name)
        _shift(into / name / "compare.json")
    return {name: into / name for name in artifacts}


def _shift(path: Path) -> None:
    report = json.loads(path.read_text())
    for entry in report["sets"]:
        if entry["name"] == "none":
            for one in entry["rounds"]:
                one["values"]["cpu"] += SHIFT_US
    path.write_text(json.dumps(report))


# --------------------------------------------------------------------------------------------------
# GitLab CI


class FakeGitLab:
    """GitLab's API on loopback, what the workflow uses of it: a file of the latest artifacts of
    a branch's job, and a merge request's notes."""

    def __init__(self) -> None:
        self.artifacts: dict[tuple[str, str], Path] = {}  # (branch, job) -> its artifacts
        self.notes: list[str] = []
        self.auth: list[str] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                prefix = f"/api/v4/projects/{PROJECT}/jobs/artifacts/"
                if not fake.allowed(self) or not url.path.startswith(prefix):
                    return self.send_error(401 if url.path.startswith(prefix) else 404)
                ref, _, inner = url.path.removeprefix(prefix).partition("/raw/")
                job = parse_qs(url.query).get("job", [""])[0]
                stored = fake.artifacts.get((ref, job))
                if stored is None or not (stored / inner).is_file():
                    return self.send_error(404)
                body = (stored / inner).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                if self.path != f"/api/v4/projects/{PROJECT}/merge_requests/{MR}/notes":
                    return self.send_error(404)
                if self.headers.get("PRIVATE-TOKEN") != TOKEN:
                    return self.send_error(401)
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                fake.notes.append(form["body"][0])
                self.send_response(201)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v4"

    def allowed(self, request: BaseHTTPRequestHandler) -> bool:
        if request.headers.get("PRIVATE-TOKEN") == TOKEN:
            self.auth.append("PRIVATE-TOKEN")
        elif request.headers.get("JOB-TOKEN") == JOB_TOKEN:
            self.auth.append("JOB-TOKEN")
        else:
            return False
        return True

    def __enter__(self) -> FakeGitLab:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


RESERVED = {"workflow", "stages", "variables", "default", "include", "image", "services",
            "before_script", "after_script", "cache"}  # fmt: skip


@dataclass
class GitLabPipeline:
    config: dict[str, Any]
    home: Path
    variables: dict[str, str]  # the predefined ones of this pipeline
    api: FakeGitLab
    artifacts: dict[str, list[Path]] = field(default_factory=dict)  # job -> each instance's
    jobs: dict[str, list[Job]] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        predefined = {"CI_API_V4_URL": self.api.url, "CI_PROJECT_ID": PROJECT,
                      "CI_JOB_TOKEN": JOB_TOKEN, "CI_DEFAULT_BRANCH": "main"}  # fmt: skip
        overridden = {"MWBENCH_ARGS": SHORT, "MWBENCH_GATE": GATE}
        return {**self.config["variables"], **overridden, **predefined, **self.variables}

    def runs(self) -> bool:
        return any(_rule(r["if"], self.env()) for r in self.config["workflow"]["rules"])

    def run(self) -> GitLabPipeline:
        assert self.runs()
        for stage in self.config["stages"]:
            for name, spec in self.config.items():
                if name not in RESERVED and spec["stage"] == stage:
                    self.run_job(name)
        if self.variables.get("CI_COMMIT_BRANCH") == "main" and not self.failed():
            for name, stored in self.artifacts.items():  # the branch's latest artifacts
                if len(stored) == 1:
                    self.api.artifacts["main", name] = stored[0]
        return self

    def failed(self) -> bool:
        return any(j.failed for jobs in self.jobs.values() for j in jobs)

    def run_job(self, name: str) -> list[Job]:
        spec = self.config[name]
        rules = spec.get("rules")
        if rules and not any(_rule(r["if"], self.env()) for r in rules):
            self.jobs[name] = []
            return []
        nodes = SHARDS if "parallel" in spec else 0  # parallel: N, made short
        indices = list(range(1, nodes + 1)) or [0]
        self.jobs[name] = _run_stage(lambda k: self._job(name, k, nodes), indices)
        return self.jobs[name]

    def _job(self, name: str, index: int, nodes: int) -> Job:
        spec, default = self.config[name], self.config.get("default", {})
        job = Job(name, self.home / (f"{name}-{index}" if nodes else name))
        job.workspace.mkdir(parents=True)
        if any(j.failed for needed in spec.get("needs", []) for j in self.jobs.get(needed, [])):
            job.failed, job.output = True, "not run: a job it needs failed"
            return job
        for needed in spec.get("needs", []):
            for stored in self.artifacts.get(needed, []):
                _copy_tree(stored, job.workspace)
        env = {**self.env(), **({"CI_NODE_INDEX": str(index), "CI_NODE_TOTAL": str(nodes)}
                                if nodes else {})}  # fmt: skip
        lines = []
        for line in [*spec.get("before_script", default.get("before_script", [])), *spec["script"]]:
            if INSTALL.fullmatch(line.strip()):
                job.installs.append(line)
            else:
                lines.append(line)
        job.ran = lines
        job.note(name, _bash("\n".join(lines), job.workspace, env))
        after = spec.get("after_script", [])
        if after:  # a shell of its own, whatever the script did; its failure fails nothing
            done = _bash("\n".join(after), job.workspace, env)
            job.output += f"$ after_script\n{done.stdout}{done.stderr}"
        kept = spec.get("artifacts")
        if kept and (not job.failed or kept.get("when") == "always"):
            stored = self.home / "artifacts" / job.workspace.name
            _copy(_files(job.workspace, kept["paths"]), job.workspace, stored)
            self.artifacts.setdefault(name, []).append(stored)
        return job


def _rule(condition: str, env: dict[str, str]) -> bool:
    """A rule's `if:`, as the workflow writes them: `$VAR == "text"` or `$VAR == $OTHER` (an
    unset variable is null, equal to nothing set)."""
    m = re.fullmatch(r'\$(\w+) (==|!=) (?:"([^"]*)"|\$(\w+))', condition)
    assert m, f"the test cannot evaluate if: {condition}"
    right = m[3] if m[3] is not None else env.get(m[4])
    return (env.get(m[1]) == right) == (m[2] == "==")


def _gitlab_flow(home: Path, api: FakeGitLab) -> dict[str, GitLabPipeline]:
    config = _load(GITLAB)
    mr = {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": MR,
          "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"}  # fmt: skip
    main_run = GitLabPipeline(config, home / "main", {
        "CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main",
    }, api).run()  # fmt: skip
    # into a branch that has no pipeline yet: no baseline (and the job token asked for it)
    first = GitLabPipeline(config, home / "first", {
        **mr, "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "release",
    }, api)  # fmt: skip
    first.artifacts = {"mwbench-merge": main_run.artifacts["mwbench-merge"]}
    first.run_job("mwbench-diff")
    mr_run = GitLabPipeline(config, home / "mr", {**mr, "MWBENCH_API_TOKEN": TOKEN}, api)
    # and a merge request that made main slower: its diff job, on main's merged made slower
    slower = GitLabPipeline(config, home / "slower", {**mr, "MWBENCH_API_TOKEN": TOKEN}, api)
    _copy_tree(main_run.artifacts["mwbench-merge"][0], home / "slower-merged")
    _shift(home / "slower-merged" / "merged" / "compare.json")
    slower.artifacts = {"mwbench-merge": [home / "slower-merged"]}
    _at_once([mr_run.run, lambda: slower.run_job("mwbench-diff")])
    return {"main": main_run, "first": first, "mr": mr_run, "slower": slower}


# --------------------------------------------------------------------------------------------------
# The runs, once for every test below: both CIs at once, as two CIs would


@dataclass
class Ran:
    github: dict[str, GitHubRun]
    gitlab: dict[str, GitLabPipeline]
    api: FakeGitLab


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ran]:
    home = tmp_path_factory.mktemp("ci")
    with FakeGitLab() as api, ThreadPoolExecutor(max_workers=2) as pool:
        github = pool.submit(_github_flow, home / "github")
        gitlab = pool.submit(_gitlab_flow, home / "gitlab", api)
        yield Ran(github.result(), gitlab.result(), api)


def _said(jobs: list[Job]) -> str:
    return "\n".join(j.output for j in jobs)


# --------------------------------------------------------------------------------------------------
# The files: what they say


def _blocks(doc: str) -> list[str]:
    return re.findall(r"^```yaml\n(.*?)^```$", doc, flags=re.M | re.S)


@pytest.mark.parametrize("path", [GITHUB, GITLAB], ids=["github", "gitlab"])
def test_the_doc_shows_each_workflow_as_it_is(path: Path) -> None:
    marker = f"# {path.relative_to(ROOT)}:"
    shown = [b for b in _blocks(DOC.read_text()) if b.startswith(marker)]
    assert len(shown) == 1, f"docs/ci.md should show {path.name} once, in a yaml block"
    assert shown[0] == path.read_text(), f"docs/ci.md's copy of {path.name} differs from the file"


def test_the_github_workflow_shards_merges_and_gates() -> None:
    workflow = _load(GITHUB)
    triggers: dict[str, Any] = workflow.get("on") or workflow[True]  # YAML 1.1: `on` is true
    assert "pull_request" in triggers and triggers["push"]["branches"] == ["main"]
    assert "--measure instructions" in workflow["env"]["MWBENCH_ARGS"]
    assert workflow["env"]["MWBENCH_GATE"] == "1%"
    shard, merge = workflow["jobs"]["shard"], workflow["jobs"]["merge"]
    values = shard["strategy"]["matrix"]["shard"]
    assert len(values) >= 2 and values == list(range(1, len(values) + 1))
    runs = [s["run"] for s in shard["steps"] if "run" in s]
    assert any("valgrind wrk faketime" in r and "pip install ." in r for r in runs)
    assert any(
        "harness compare $MWBENCH_ARGS" in r
        and "--shard ${{ matrix.shard }}/${{ strategy.job-total }}" in r
        for r in runs
    )
    uploads = [s["with"] for s in shard["steps"] if s.get("uses", "").startswith("actions/upload")]
    assert uploads and uploads[0]["path"] == "shard-${{ matrix.shard }}/compare.json"
    assert merge["needs"] in ("shard", ["shard"])
    gate = [s for s in merge["steps"] if "harness diff" in s.get("run", "")]
    assert len(gate) == 1 and gate[0]["if"] == "github.event_name == 'pull_request'"
    for said in ('--max-regression "$MWBENCH_GATE"', "--format markdown", "$GITHUB_STEP_SUMMARY"):
        assert said in gate[0]["run"]
    assert any(s.get("uses", "").startswith("actions/cache/save") for s in merge["steps"])


def test_the_gitlab_pipeline_shards_merges_and_gates() -> None:
    config, github = _load(GITLAB), _load(GITHUB)
    assert config["variables"]["MWBENCH_ARGS"] == github["env"]["MWBENCH_ARGS"]  # the same run
    assert config["variables"]["MWBENCH_GATE"] == "1%"
    shard = config["mwbench-shard"]
    assert isinstance(shard["parallel"], int) and shard["parallel"] >= 2
    install = "apt-get install -y --no-install-recommends valgrind wrk faketime"
    assert install in shard["before_script"]
    assert any(
        "harness compare $MWBENCH_ARGS" in line and "--shard $CI_NODE_INDEX/$CI_NODE_TOTAL" in line
        for line in shard["script"]
    )
    assert config["mwbench-merge"]["needs"] == ["mwbench-shard"]
    diff = config["mwbench-diff"]
    assert diff["needs"] == ["mwbench-merge"]
    assert diff["artifacts"]["when"] == "always" and "diff.md" in diff["artifacts"]["paths"]
    gate = [line for line in diff["script"] if "harness diff" in line]
    assert len(gate) == 1 and '--max-regression "$MWBENCH_GATE"' in gate[0]
    assert "--format markdown" in gate[0]


def test_the_workflows_compare_arguments_are_valid() -> None:
    args = shlex.split(_load(GITHUB)["env"]["MWBENCH_ARGS"])
    compare = main.get_command(click.Context(main), "compare")
    assert compare is not None
    ctx = compare.make_context("compare", [*args, "--no-charts", "--shard", "1/3", "-d", "x"])
    assert ctx.params["shard"] is not None and ctx.params["repeat"] == 2


# --------------------------------------------------------------------------------------------------
# The runs: what they did


@pytest.mark.slow
def test_github_main_stores_the_baseline_a_pull_request_is_gated_on(ran: Ran) -> None:
    main_run, pr = ran.github["main"], ran.github["pr"]
    for run in (main_run, pr):
        jobs = [*run.jobs["shard"], *run.jobs["merge"]]
        assert not any(j.failed for j in jobs), _said(jobs)
        assert all(j.installs for j in jobs)  # every job installs; here, the venv stands in
    assert sorted(main_run.artifacts) == ["mwbench-merged", "mwbench-shard-1", "mwbench-shard-2"]
    assert list(pr.cache) == ["mwbench-baseline-c0ffee"]
    merged = json.loads((pr.artifacts["mwbench-merged"] / "compare.json").read_text())
    assert [s["name"] for s in merged["sets"]] == ["none", "secure"]

    merge = pr.jobs["merge"][0]
    summary = (merge.workspace.parent / "merge.summary.md").read_text()
    assert summary.startswith("**mwbench: no regression over the gate** (+200 µs)"), summary
    assert "| secure | overhead |" in summary and "| none | cost |" in summary
    assert merge.text("diff.md") == summary
    assert any(name.startswith("Comment") for name in merge.skipped)  # opt-in, not set here
    assert "mwbench-diff" in pr.artifacts
    assert (pr.artifacts["mwbench-diff"] / "diff.md").read_text() == summary


@pytest.mark.slow
def test_github_without_a_baseline_or_with_a_slower_change(ran: Ran, tmp_path: Path) -> None:
    # the gate's step alone, where main has stored nothing yet (restore found no baseline)
    _copy_tree(ran.github["pr"].jobs["merge"][0].workspace / "merged", tmp_path / "merged")
    (gate,) = [
        s for s in _load(GITHUB)["jobs"]["merge"]["steps"] if "harness diff" in s.get("run", "")
    ]
    summary = tmp_path / "summary.md"
    done = _bash(gate["run"], tmp_path, {"GITHUB_STEP_SUMMARY": str(summary), "MWBENCH_GATE": GATE})
    assert done.returncode == 0, done.stdout + done.stderr
    said = summary.read_text()
    assert "no baseline from main yet" in said and said == (tmp_path / "diff.md").read_text()

    slower = ran.github["slower"].jobs["merge"][0]
    assert slower.failed  # the gate's exit 1 through the pipe to the summary
    said = (slower.workspace.parent / "merge.summary.md").read_text()
    assert said.startswith("**mwbench: 1 regression(s) over the gate** (+200 µs): none")
    assert (ran.github["slower"].artifacts["mwbench-diff"] / "diff.md").read_text() == said


@pytest.mark.slow
def test_gitlab_main_keeps_the_baseline_a_merge_request_is_gated_on(ran: Ran) -> None:
    main_run, mr = ran.gitlab["main"], ran.gitlab["mr"]
    for pipeline in (main_run, mr):
        assert not pipeline.failed(), "\n".join(_said(j) for j in pipeline.jobs.values())
    assert len(main_run.jobs["mwbench-shard"]) == SHARDS
    assert main_run.jobs["mwbench-diff"] == []  # main is not gated
    assert ("main", "mwbench-merge") in ran.api.artifacts

    diff = mr.jobs["mwbench-diff"][0]
    said = diff.text("diff.md")
    assert said.startswith("**mwbench: no regression over the gate** (+200 µs)"), diff.output
    assert "| secure | overhead |" in said and "| none | cost |" in said
    assert said.strip() in [n.strip() for n in ran.api.notes]  # posted on the merge request
    assert (mr.artifacts["mwbench-diff"][0] / "diff.md").read_text() == said


@pytest.mark.slow
def test_gitlab_without_a_baseline_or_with_a_slower_change(ran: Ran) -> None:
    first = ran.gitlab["first"].jobs["mwbench-diff"][0]
    assert not first.failed, first.output
    assert "no baseline from release yet" in first.text("diff.md")
    assert "JOB-TOKEN" in ran.api.auth  # without MWBENCH_API_TOKEN, the job token asked

    slower = ran.gitlab["slower"].jobs["mwbench-diff"][0]
    assert slower.failed, slower.output
    said = slower.text("diff.md")
    assert said.startswith("**mwbench: 1 regression(s) over the gate** (+200 µs): none")
    assert said.strip() in [n.strip() for n in ran.api.notes]  # the after_script posts it
    assert (ran.gitlab["slower"].artifacts["mwbench-diff"][0] / "diff.md").read_text() == said
