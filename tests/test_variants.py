"""Configuration as an axis (`--variant NAME:KEY=VALUE`): parsing and its one-line errors, the
record with secrets redacted, and a real compare of an app configured from its environment that
finds the difference a variable makes, none where two variants mean the same, a variant the
server fails on, and the diff of two runs across the variant axis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import UsageError
from harness.experiments.compare.result import CompareReport
from harness.serving.variants import REDACTED, Variant, parse_variants

ROOT = Path(__file__).resolve().parents[1]
APP = f"{ROOT}/tests/fixtures/apps/configured.py:app"
SHORT = ["-m", "none", "--no-baseline", "--no-ceiling", "--no-charts", "-c", "16",
         "--duration", "1s", "--warmup", "0"]  # fmt: skip
WORK_US = 300


def test_variants_group_by_name_in_the_order_given() -> None:
    found = parse_variants(["off:", "on:TRACES=1.0", "on:SAMPLE=0.1", "half:TRACES=0.5"])
    assert found == (
        Variant("off"),
        Variant("on", (("TRACES", "1.0"), ("SAMPLE", "0.1"))),
        Variant("half", (("TRACES", "0.5"),)),
    )
    assert parse_variants(["on:X=a=b"]) == (Variant("on", (("X", "a=b"),)),)  # '=' in a value
    assert parse_variants(["on:X="]) == (Variant("on", (("X", ""),)),)  # set, to nothing
    assert parse_variants(["on:X=1", "on:X=1"]) == (Variant("on", (("X", "1"),)),)


@pytest.mark.parametrize(
    ("texts", "said"),
    [
        (["TRACES=1.0"], "has no name"),
        ([":TRACES=1.0"], "has no name"),
        (["on:TRACES"], "has no '='"),
        (["on:TRACES=1.0", "on:TRACES=0.5"], "sets TRACES twice, to '1.0' and '0.5'"),
        (["on:1X=2"], "not an environment variable's name: '1X'"),
        (["on:MWBENCH_LAYERS=none"], "MWBENCH_LAYERS is the harness's own"),
        (["on/off:X=1"], "a variant's name is letters"),
    ],
)
def test_a_bad_variant_is_named(texts: list[str], said: str) -> None:
    with pytest.raises(UsageError, match=None) as caught:
        parse_variants(texts)
    assert said in str(caught.value) and caught.value.param == "variants"


def test_secrets_are_not_recorded() -> None:
    variant = parse_variants([
        "on:SENTRY_DSN=https://abc123@127.0.0.1/1", "on:OTEL_EXPORTER_TOKEN=s3cret",
        "on:UPSTREAM=https://user:pw@127.0.0.1:9/x", "on:TRACES=1.0", "on:API_KEY=k",
    ])[0]  # fmt: skip
    recorded = variant.to_dict()["env"]
    assert recorded == {"SENTRY_DSN": REDACTED, "OTEL_EXPORTER_TOKEN": REDACTED,
                        "UPSTREAM": REDACTED, "TRACES": "1.0", "API_KEY": REDACTED}  # fmt: skip
    assert "s3cret" not in variant.describe() and "TRACES=1.0" in variant.describe()


def test_a_bad_variant_on_the_command_line_is_one_line() -> None:
    result = CliRunner().invoke(main, ["compare", "-t", "raw-asgi", "--variant", "on:TRACES"])
    assert result.exit_code == 2
    assert "--variant" in result.output and "has no '='" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_variant_axis_finds_a_difference_that_is_there_and_none_where_there_is_none(
    tmp_path: Path,
) -> None:
    out = tmp_path / "a"
    result = CliRunner().invoke(main, [
        "compare", "--app", APP, *SHORT, "-r", "3", "-d", str(out), "--variant", "off:",
        "--variant", f"on:WORK_US={WORK_US}", "--variant", "on:SENTRY_DSN=https://k@127.0.0.1/1",
        "--variant", "same:WORK_US=0",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "variants, each against off" in result.output
    data = json.loads((out / "compare.json").read_text())
    assert data["variants"] == ["off", "on", "same"]
    assert data["settings"]["variants"][1] == {
        "name": "on", "env": {"WORK_US": str(WORK_US), "SENTRY_DSN": REDACTED}
    }  # fmt: skip
    assert "k@127.0.0.1" not in (out / "compare.json").read_text()
    rows = {row["variant"]: row for row in data["variant_comparison"]}
    on, same = rows["on"]["differences"]["cpu"], rows["same"]["differences"]["cpu"]
    # WORK_US of CPU per request, found (the server's CPU time also pays what it costs to spin)
    assert on["significant"] and WORK_US * 0.7 < on["median"] < WORK_US * 2, on
    # the same app twice: no difference to speak of beside the one that is there
    assert abs(same["median"]) < WORK_US / 4, same
    report = CompareReport.load(out / "compare.json")  # the axis loads back
    assert [r.value for r in report.variant_rows] == ["off", "on", "same"]

    # B: the same compare where `on` got slower, diffed across the variant axis, gated
    changed = json.loads((out / "compare.json").read_text())
    for entry in changed["sets"]:
        if entry["variant"] == "on":
            for one in entry["rounds"]:
                one["values"]["cpu"] *= 1.5
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "compare.json").write_text(json.dumps(changed))
    diff = CliRunner().invoke(main, [
        "diff", str(out / "compare.json"), str(tmp_path / "b" / "compare.json"),
        "--max-regression", "10%", "-d", str(tmp_path / "diff"),
    ])  # fmt: skip
    assert diff.exit_code == 1, diff.output
    assert "on:none" in diff.output.split("regression over --max-regression")[1]
    assert "same:none" not in diff.output.split("regression over --max-regression")[1]


@pytest.mark.slow
def test_a_variant_the_server_fails_on_fails_its_rounds_naming_it(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "compare", "--app", APP, *SHORT, "-r", "1", "-d", str(tmp_path),
        "--variant", "ok:", "--variant", "bad:FAIL_AT_START=1",
    ])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    by_variant = {e["variant"]: e for e in data["sets"]}
    assert by_variant["ok"]["rounds"][0]["status"] == "ok"  # the other variant's rounds kept
    failed = by_variant["bad"]["rounds"][0]
    assert failed["status"] == "failed" and "variant bad: FAIL_AT_START=1" in failed["reason"]


@pytest.mark.slow
def test_profile_takes_variants_one_profile_each(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, [
        "profile", "--app", APP, "--duration", "1s", "--lead-in", "0.5s", "-d", str(tmp_path),
        "--variant", "off:", "--variant", f"on:WORK_US={WORK_US}",
        "--variant", "on:SENTRY_DSN=https://k@127.0.0.1/1",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    off = json.loads((tmp_path / "off" / "configured-none.json").read_text())
    on = json.loads((tmp_path / "on" / "configured-none.json").read_text())
    assert off["settings"]["env"] == {}
    assert on["settings"]["env"] == {"WORK_US": str(WORK_US), "SENTRY_DSN": REDACTED}

    # the app's own lines run most samples where the variant turned its spin on, few where not
    def app_share(profile: dict[str, Any]) -> float:
        return sum(r["flat_pct"] for r in profile["top"] if r["file"].endswith("configured.py"))

    assert app_share(on) > 50 > app_share(off) * 2, (app_share(on), app_share(off))
    assert on["wrk"]["qps"] < off["wrk"]["qps"]


@pytest.mark.slow
def test_micro_runs_each_variant_in_its_own_process(tmp_path: Path) -> None:
    out = tmp_path / "micro.json"
    args = ["micro", "--app", APP, "-m", "none", "-r", "3", "-n", "200"]
    result = CliRunner().invoke(main, [
        *args, "--json", str(out), "--variant", "off:", "--variant", "on:WORK_US=50",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "mwbench.micro-variants" and list(data["reports"]) == ["off", "on"]
    cost = {name: r["targets"][0]["sets"][0]["us_per_request"]["median"]
            for name, r in data["reports"].items()}  # fmt: skip
    assert cost["on"] - cost["off"] > 25, cost  # the variable was read by the app, in-process
    failed = CliRunner().invoke(
        main, [*args, "--variant", "ok:", "--variant", "bad:FAIL_AT_START=1"]
    )
    assert failed.exit_code == 1 and "Traceback" not in failed.output
    assert "variant bad (FAIL_AT_START=1)" in failed.output


@pytest.mark.slow
def test_all_means_every_layer_the_variant_has(tmp_path: Path) -> None:
    """`-m all` was the layers described without the variant's variables: a variant that
    configures one away (OTEL=0) failed every round with 'unknown layer(s)'."""
    app = f"{ROOT}/tests/fixtures/apps/configured_layers.py:app"
    result = CliRunner().invoke(main, [
        "compare", "--app", app, "-m", "all", "--no-baseline", "--no-ceiling", "--no-charts",
        "-c", "16", "--duration", "1s", "--warmup", "0", "-r", "1", "-d", str(tmp_path),
        "--variant", "gzip:", "--variant", "plain:WITH_GZIP=0",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "compare.json").read_text())
    assert [e["rounds"][0]["status"] for e in data["sets"]] == ["ok", "ok"]
