"""``holdout`` / ``crossfit``: entries are scored on lines they were not counted on (issue 12).

The corpus here has four blocks of 100 lines; ``holdout=0.5`` counts blocks 0 and 2 and holds
out blocks 1 and 3. A phrase written only in the counted blocks is a strong candidate there,
but is used nowhere on the held-out lines, so held-out scoring must cut it, while the
default build (pruned on a sample of the whole corpus) keeps it.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypertok import BuildConfig, HyperTokError, build
from hypertok.builder.candidates import Candidate
from hypertok.builder.corpus import HOLDOUT_BLOCK_LINES, Counts, count_corpus
from hypertok.builder.select import _prune

from ..conftest import TINY_TEXT

LINES = TINY_TEXT.splitlines()
PHRASE = " Зелёная черепаха плывёт к берегу"
# 100-line blocks: 0 and 2 hold the phrase (counted), 1 and 3 do not (held out)
BLOCKS = [[LINES[i % len(LINES)] + (PHRASE if b % 2 == 0 else "") for i in range(HOLDOUT_BLOCK_LINES)]
          for b in range(4)]
# A budget just above the floor (498): the room for pieces and entries is smaller than the number of pieces and
# entries used on the held-out lines, so nothing unused there can stay. (Among candidates
# that save nothing where they are measured, the pruning keeps those with the largest
# counted saving while there is room, as it does in-sample.)
CFG = dict(vocab_size=500, mode="concept", min_ngram_count=5)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("holdout") / "blocks.txt"
    path.write_text("\n".join(line for block in BLOCKS for line in block) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def builds(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("toks")
    return {name: build([corpus], out / name, BuildConfig(**CFG, **kw))
            for name, kw in [("default", {}), ("heldout", {"holdout": 0.5}),
                             ("crossfit", {"holdout": 0.5, "crossfit": True})]}


def _phrase_entries(tok) -> list[str]:
    """Entries holding two words of the phrase: multi-word units, never a backbone piece."""
    return [s for s in tok.surfaces if "черепаха" in s.lower() and ("зелёная" in s.lower() or "плывёт" in s)]


def test_an_entry_frequent_only_on_the_counted_lines_is_cut(builds):
    assert _phrase_entries(builds["default"]), "the default build should keep the phrase (else the test shows nothing)"
    assert _phrase_entries(builds["heldout"]) == []
    assert _phrase_entries(builds["crossfit"]) == []


def test_folds_count_and_sample_only_their_own_lines(corpus):
    cfg = BuildConfig(**CFG, holdout=0.5)
    counts = count_corpus([corpus], cfg, word_ngrams=True)
    counted, held = counts.folds
    assert " черепаха" in counted.units and " черепаха" in counts.units  # the whole corpus's units stay whole
    assert held.units == {} and held.ngrams == {}  # not cross-fitted: the held-out lines propose nothing
    assert counted.sample == []  # ... and only they are scored on
    held_lines = {line + "\n" for block in BLOCKS[1::2] for line in block}
    assert held.sample and set(held.sample) <= held_lines and counts.sample == held.sample
    crossed = count_corpus([corpus], BuildConfig(**CFG, holdout=0.5, crossfit=True), word_ngrams=True)
    a, b = crossed.folds
    assert " черепаха" in a.units and " черепаха" not in b.units
    assert any("черепаха" in g for g in a.ngrams) and not any("черепаха" in g for g in b.ngrams)
    assert set(b.sample) <= held_lines and not set(a.sample) & held_lines


def test_crossfit_scores_each_candidate_on_the_other_fold():
    """Directly on ``_prune``: "ab" fills fold 0's lines and "cd" fold 1's, each proposed by its
    own fold; "ef" is proposed by both and used on both. In-sample, "ab" and "cd" are used most;
    cross-fitted, each is used nowhere it is measured, and "ef" stays."""
    cfg = BuildConfig(**CFG, holdout=0.5, crossfit=True)
    fold0, fold1 = ["ab ab ab ef\n"] * 20, ["cd cd cd ef\n"] * 20
    pool = [Candidate("ab", "word", 60, 60, folds=(0,)), Candidate("cd", "word", 60, 60, folds=(1,)),
            Candidate("ef", "word", 40, 40, folds=(0, 1))]
    chars = set("abcdef \n")
    crossfit = Counts(sample=fold0 + fold1, folds=[Counts(sample=fold0), Counts(sample=fold1)])
    assert [c.surface for c in _prune(pool, 1, [], chars, crossfit, cfg, False)] == ["ef"]
    in_sample = Counts(sample=fold0 + fold1)
    assert "ef" not in [c.surface for c in _prune(pool, 2, [], chars, in_sample, cfg, False)]


@pytest.fixture(scope="module")
def hf(builds):
    from tokenizers import Tokenizer

    return Tokenizer.from_file(str(builds["crossfit"].path / "tokenizer.json"))


@settings(max_examples=300, deadline=None)
@given(st.text(st.characters(min_codepoint=0, max_codepoint=0x10FFFF, exclude_categories=()), max_size=80)
       | st.lists(st.sampled_from(TINY_TEXT.replace("\n", " ").split(" ") + PHRASE.split(" ") + ["", ",", "\n"]),
                  max_size=30).map(" ".join))
def test_round_trip_and_tokenizer_json_ids(builds, hf, text):
    tok = builds["crossfit"]
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert builds["heldout"].decode(builds["heldout"].encode(text)) == text
    if not any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # tokenizers takes only valid UTF-8 strings
        # plain tokenizer.json reads "<s>" in text as the special token, as encode(allow_special=True) does
        assert hf.encode(text, add_special_tokens=False).ids == tok.encode(text, allow_special=True)


def test_config_records_the_option(builds):
    assert builds["crossfit"].config["build"]["holdout"] == 0.5 and builds["crossfit"].config["build"]["crossfit"]


@pytest.mark.parametrize("kw, match", [
    ({"holdout": -0.1}, "between 0 .off. and 0.9"),
    ({"holdout": 0.95}, "between 0 .off. and 0.9"),
    ({"holdout": float("nan")}, "between 0 .off. and 0.9"),
    ({"crossfit": True}, "needs holdout 0.5"),
    ({"holdout": 0.3, "crossfit": True}, "needs holdout 0.5"),
])
def test_bad_values_say_what_to_pass(kw, match):
    with pytest.raises(HyperTokError, match=match):
        BuildConfig(**kw)


def test_holdout_needs_corpus_lines(tmp_path):
    with pytest.raises(HyperTokError, match="navec word list"):
        build([], tmp_path / "out", BuildConfig(vocab_size=2000, holdout=0.5))
    short = tmp_path / "short.txt"
    short.write_text(TINY_TEXT * 10, encoding="utf-8")  # 60 lines: one block, nothing held out
    with pytest.raises(HyperTokError, match=r"short.txt has 60 lines.*blocks of 100.*--holdout 0"):
        build([short], tmp_path / "out2", BuildConfig(**CFG, holdout=0.5))
