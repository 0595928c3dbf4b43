"""pyproject.toml: what it declares exists, and the pytest markers are registered."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_folder_of_code_is_a_package_that_ships(pyproject):
    """What a wheel holds is what ``packages.find`` finds, and no package data is declared:
    a folder of modules without ``__init__.py``, or a non-Python file the code reads, would
    be left out of the wheel while the tests, run from the checkout, still pass."""
    from setuptools import find_packages

    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    assert "package-data" not in pyproject["tool"]["setuptools"]
    found = set(find_packages(ROOT, include=find["include"]))
    code = {".".join(d.relative_to(ROOT).parts) for d in (ROOT / "hypertok").rglob("*")
            if d.is_dir() and any(d.glob("*.py"))} | {"hypertok"}
    assert code == found, code ^ found
    data = [f for f in (ROOT / "hypertok").rglob("*")
            if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts]
    assert not data, f"files a wheel would leave out (declare them as package-data): {data}"


def test_markers_and_doctests_are_configured(pyproject):
    ini = pyproject["tool"]["pytest"]["ini_options"]
    names = {m.split(":")[0] for m in ini["markers"]}
    assert {"slow", "corpus", "long"} <= names
    used = {m for f in (ROOT / "tests").rglob("*.py")
            for m in re.findall(r"mark\.(\w+)", f.read_text(encoding="utf-8"))}
    assert names <= used, f"markers no test uses: {names - used}"
    assert "--doctest-modules" in ini["addopts"] and "hypertok" in ini["testpaths"]
