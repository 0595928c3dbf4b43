"""The corpus helpers of conftest: skip outside the team's machines, fail under CI's flag."""

from __future__ import annotations

import pytest

from . import conftest


def test_a_missing_corpus_skips_with_its_reason_and_fails_when_required(tmp_path, monkeypatch):
    monkeypatch.setattr(conftest, "RUSLIT", tmp_path / "corpora" / "ruslit")
    monkeypatch.delenv("HYPERTOK_REQUIRE_CORPORA", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ruslit corpus is not at"):
        conftest.needs_ruslit()
    with pytest.raises(pytest.skip.Exception, match="modern corpus is not at"):
        conftest.needs_modern()
    monkeypatch.setenv("HYPERTOK_REQUIRE_CORPORA", "1")
    with pytest.raises(pytest.fail.Exception, match="HYPERTOK_REQUIRE_CORPORA=1"):
        conftest.needs_ruslit()
    with pytest.raises(pytest.fail.Exception, match="HYPERTOK_REQUIRE_CORPORA=1"):
        conftest.needs_modern()
