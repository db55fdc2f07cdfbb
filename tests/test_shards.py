"""A compare split across a CI matrix (`compare --shard K/N`) and joined (`harness merge`): each
shard measures its sets with what they are measured against, the merge keeps every pairing
within its shard, and shards measured differently are refused in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli.main import main
from harness.errors import UsageError
from harness.experiments.compare.contenders import contenders, shard_of
from harness.experiments.compare.merge import ROUNDS_APART, merge
from harness.experiments.compare.result import CompareReport

SETS = [(), ("dump",), ("cors",), ("secure",)]
SHORT = ["-t", "raw-asgi", "-m", "none,secure,nocache", "--no-ceiling", "--no-charts",
         "-c", "16", "-r", "2", "--duration", "1s", "--warmup", "0"]  # fmt: skip


def _names(chosen: list) -> list[str]:  # type: ignore[type-arg]
    return [f"{c.target.name}:{'+'.join(c.stack) or 'none'}" for c in chosen]


def test_a_shard_takes_every_nth_set_with_what_it_is_measured_against() -> None:
    everyone = contenders(["starlette"], SETS, baseline=True)
    one, two = shard_of(everyone, 1, 2), shard_of(everyone, 2, 2)
    assert _names(one) == ["starlette:none", "starlette:cors", "raw-asgi:none"]
    # dump and secure are measured against none, which is measured against raw-asgi
    assert _names(two) == ["starlette:none", "starlette:dump", "starlette:secure", "raw-asgi:none"]
    measured = {c for c in (*one, *two) if c.role == "set"}
    assert measured == {c for c in everyone if c.role == "set"}  # every set in some shard


@pytest.mark.parametrize(
    ("shard", "said"), [("0/2", "K must be from 1 to N"), ("3/2", "K must be from 1 to N"),
                        ("1-2", "not K/N"), ("1/5", "5 shards for 3 set(s)")],
)  # fmt: skip
def test_a_bad_shard_is_one_line(shard: str, said: str) -> None:
    result = CliRunner().invoke(main, ["compare", *SHORT, "--shard", shard])
    assert result.exit_code == 2, result.output
    assert said in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_two_shards_merge_into_one_compare(tmp_path: Path) -> None:
    for k in (1, 2):
        result = CliRunner().invoke(
            main, ["compare", *SHORT, "--shard", f"{k}/2", "-d", str(tmp_path / f"s{k}")]
        )
        assert result.exit_code == 0, result.output
    shards = [tmp_path / f"s{k}" / "compare.json" for k in (1, 2)]
    first = json.loads(shards[0].read_text())
    assert first["settings"]["shard"]["order"] == ["none", "secure", "nocache"]
    assert [s["name"] for s in first["sets"]] == ["none", "nocache"]  # its share, and none

    result = CliRunner().invoke(main, ["merge", *map(str, shards), "-d", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    merged = CompareReport.load(tmp_path / "m" / "compare.json")
    assert [e.label for e in merged.entries] == ["none", "secure", "nocache"]
    none = merged.find("none")
    assert none is not None and sorted(r.repeat for r in none.rounds) == [
        1, 2, ROUNDS_APART + 1, ROUNDS_APART + 2
    ]  # fmt: skip
    for label in ("secure", "nocache"):
        entry = merged.find(label)
        assert entry is not None and entry.reference is none
        overhead = entry.overhead("cpu")
        assert overhead is not None and overhead.n == 2  # paired within its own shard only
    # secure's overhead is what its own shard measured, round by round
    shard_two = CompareReport.load(shards[1])
    alone = shard_two.find("secure")
    assert alone is not None and alone.overhead("cpu") == merged.find("secure").overhead("cpu")  # type: ignore[union-attr]

    def refused(*paths: Path) -> str:
        with pytest.raises(UsageError) as caught:
            merge([CompareReport.load(p) for p in paths], tmp_path / "x")
        return str(caught.value)

    assert "2/2 not given" in refused(shards[0])
    assert "not the shards of one compare" in refused(shards[0], shards[0], shards[1])
    other = json.loads(shards[1].read_text())
    other["environment"]["packages"]["starlette"] = "0.1.0"
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "compare.json").write_text(json.dumps(other))
    said = refused(shards[0], tmp_path / "o" / "compare.json")
    assert "another version of starlette" in said and "0.1.0" in said
    other = json.loads(shards[1].read_text())
    other["settings"]["duration_s"] = 3.0
    (tmp_path / "o" / "compare.json").write_text(json.dumps(other))
    assert "another duration" in refused(shards[0], tmp_path / "o" / "compare.json")
    unsharded = json.loads(shards[1].read_text())
    unsharded["settings"]["shard"] = None
    (tmp_path / "o" / "compare.json").write_text(json.dumps(unsharded))
    assert "is not a shard" in refused(shards[0], tmp_path / "o" / "compare.json")

    # The CI's comment: the merged run against a baseline, as Markdown, gated both ways
    base = tmp_path / "m" / "compare.json"
    gate = ["--format", "markdown", "--max-regression", "5%", "-d", str(tmp_path / "d")]
    same = CliRunner().invoke(main, ["diff", str(base), str(base), *gate])
    assert same.exit_code == 0, same.output
    assert same.output.startswith("**mwbench: no regression over the gate** (+5%)")
    assert "| secure | overhead |" in same.output and "<details>" in same.output
    slower = json.loads(base.read_text())
    # A change far outside what secure's two paired rounds spread over (Welch's interval on two
    # rounds a side is about 3 spreads wide): a regression the rounds must tell from zero.
    secure = merged.find("secure")
    assert secure is not None and secure.reference is not None
    spread = max(diffs := secure.differences(secure.reference, "cpu")) - min(diffs)
    for entry in slower["sets"]:
        if entry["name"] == "secure":
            for one in entry["rounds"]:
                one["values"]["cpu"] += 50.0 + 10 * spread
    (tmp_path / "slow").mkdir()
    (tmp_path / "slow" / "compare.json").write_text(json.dumps(slower))
    worse = CliRunner().invoke(
        main, ["diff", str(base), str(tmp_path / "slow" / "compare.json"), *gate]
    )
    assert worse.exit_code == 1
    assert worse.output.startswith("**mwbench: 1 regression(s) over the gate** (+5%): secure")
