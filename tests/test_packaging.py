"""pyproject.toml's license is an SPDX expression: setuptools stops building a `license` table
(or a License classifier beside an expression) on 2027-02-18."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_the_license_is_an_spdx_expression() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    spdx = project.get("license")
    assert isinstance(spdx, str), f"project.license must be an SPDX string, not {spdx!r}"
    licenses = pytest.importorskip("packaging.licenses")
    assert licenses.canonicalize_license_expression(spdx) == spdx
    classifiers = project.get("classifiers", [])
    assert not [c for c in classifiers if c.startswith("License ::")], classifiers
