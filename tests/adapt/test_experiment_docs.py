"""Issue 9 fixes in experiments/adapt: its inputs folder is really ignored by git, and the README
names only files that are committed."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path


ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "experiments" / "adapt" / "README.md"


def test_data_folder_of_the_experiment_is_ignored():
    """The rule is in .gitignore, and git (the repository's own tool, present wherever its tests
    run from a checkout) applies it: no skip, a missing git or checkout fails here."""
    assert "/.data/" in (ROOT / ".gitignore").read_text(encoding="utf-8").split(), ".gitignore must list /.data/"
    r = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", ".data/adapt/train.txt.xz"])
    assert r.returncode == 0, ".data/ must be ignored by git, as experiments/adapt/README.md says"


def test_readme_names_only_files_that_exist():
    text = README.read_text(encoding="utf-8")
    checkpoint_files = {"config.json", "tokenizer.json", "model.safetensors.index.json"}  # of a model folder
    for name in set(re.findall(r"`([\w./-]+\.(?:json|png|py|sh|log))`", text)) - checkpoint_files:
        assert (README.parent / name).is_file(), f"README names {name}, which is not in experiments/adapt"
