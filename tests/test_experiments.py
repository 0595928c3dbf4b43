"""Studies that stay runnable (issue 23): every script under ``experiments/`` answers ``--help``,
and ``experiments/core/run_core.py`` runs end to end on a tiny corpus.

``run_core.py`` crashed after issue 9 moved the modules it hashed by name; a move now fails
here instead of in a study. ``experiments/realmodel/`` has its own test
(``tests/adapt/test_realmodel_experiment.py``). The scripts run in child processes, all at
once, so the suite waits for the slowest, not for their sum.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import TINY_TEXT

ROOT = Path(__file__).resolve().parents[1]
EXPERIMENTS = ROOT / "experiments"
SCRIPTS = sorted(p for p in EXPERIMENTS.rglob("*.py")
                 if "realmodel" not in p.relative_to(EXPERIMENTS).parts and "__main__" in p.read_text(encoding="utf-8"))


def test_every_study_folder_has_a_script():
    folders = {p.parent.name for p in SCRIPTS}
    assert {"adapt", "bases", "compression", "core", "gguf", "memory", "vram"} <= folders, folders


def test_every_script_answers_help():
    procs = {p: subprocess.Popen([sys.executable, str(p), "--help"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for p in SCRIPTS}
    failed = {}
    for p, proc in procs.items():
        try:
            out, _ = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:  # a script without argparse that started its study
            proc.kill()
            out, _ = proc.communicate()
        if proc.returncode != 0 or "usage:" not in out:
            failed[str(p.relative_to(ROOT))] = (proc.returncode, out[-500:])
    assert not failed, failed


def test_run_core_runs_on_a_tiny_corpus(tmp_path):
    train, dev = tmp_path / "train.txt", tmp_path / "dev.txt"
    train.write_text(TINY_TEXT * 60, encoding="utf-8")
    dev.write_text(TINY_TEXT * 3, encoding="utf-8")
    out = tmp_path / "results.json"
    subprocess.run([sys.executable, str(EXPERIMENTS / "core" / "run_core.py"), "--train", str(train), "--dev",
                    str(dev), "--sizes", "900", "--modes", "word", "--cache", str(tmp_path / "cache"),
                    "--out", str(out)], cwd=ROOT, check=True, capture_output=True, text=True, timeout=300)
    res = json.loads(out.read_text(encoding="utf-8"))
    assert res["runs"]["word-900"]["lossless_dev"] and res["determinism"]["identical"]
    assert len(res["meta"]["builder_stamp"]) == 12
    assert (tmp_path / "results.md").is_file()


def test_the_builder_stamp_follows_the_builder_code(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT))
    from experiments.stamp import BUILDER_CODE, builder_sources, builder_stamp

    for name in BUILDER_CODE:
        src = ROOT / name
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, tmp_path / name)
    assert builder_stamp(tmp_path) == builder_stamp(ROOT)
    assert any(p.name == "select.py" for p in builder_sources(tmp_path))
    (tmp_path / "hypertok" / "builder" / "select.py").write_text("# edited\n", encoding="utf-8")
    assert builder_stamp(tmp_path) != builder_stamp(ROOT)
    shutil.rmtree(tmp_path / "hypertok" / "core")
    with pytest.raises(FileNotFoundError, match="BUILDER_CODE"):
        builder_stamp(tmp_path)
