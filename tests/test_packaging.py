"""pyproject.toml: what it declares exists, and the pytest markers are registered."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_declared_package_data_exists(pyproject):
    """Issue 9: package-data named a hypertok/data/ folder that did not exist."""
    data = pyproject["tool"].get("setuptools", {}).get("package-data", {})
    for package, patterns in data.items():
        base = ROOT / package.replace(".", "/")
        for pattern in patterns:
            assert list(base.glob(pattern)), f"package-data {package}: {pattern} matches no file"


def test_markers_and_doctests_are_configured(pyproject):
    ini = pyproject["tool"]["pytest"]["ini_options"]
    names = {m.split(":")[0] for m in ini["markers"]}
    assert {"slow", "gpu", "corpus"} <= names
    assert "--doctest-modules" in ini["addopts"] and "hypertok" in ini["testpaths"]
