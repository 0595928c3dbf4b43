"""Issue 9 fixes in experiments/adapt: its inputs folder is really ignored by git, and the README
names only files that are committed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "experiments" / "adapt" / "README.md"


@pytest.mark.skipif(shutil.which("git") is None or not (ROOT / ".git").exists(), reason="needs a git checkout")
def test_data_folder_of_the_experiment_is_ignored():
    r = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", ".data/adapt/train.txt.xz"])
    assert r.returncode == 0, ".data/ must be ignored by git, as experiments/adapt/README.md says"


def test_readme_names_only_files_that_exist():
    text = README.read_text(encoding="utf-8")
    checkpoint_files = {"config.json", "tokenizer.json", "model.safetensors.index.json"}  # of a model folder
    for name in set(re.findall(r"`([\w./-]+\.(?:json|png|py|sh|log))`", text)) - checkpoint_files:
        assert (README.parent / name).is_file(), f"README names {name}, which is not in experiments/adapt"
