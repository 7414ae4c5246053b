"""Keyword rules in the codeframe: validation at load, matching, and how every tagger combines them."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.embed import build_embedder
from pipeline.errors import ConfigError
from pipeline.tagging import EmbeddingTfidfTagger, ZeroShotTagger
from pipeline.tagging.rules import KeywordRules
from pipeline.tagging.taxonomy import Taxonomy, load_taxonomy

BASE = {
    "version": "k1",
    "tags": [
        {
            "name": "refund",
            "description": "Money back for an order",
            "examples": ["I want my money back", "reembolso"],
            "threshold": 0.3,
        },
        {"name": "late", "description": "The parcel came late", "parent": None},
    ],
}


def _with(**rules: object) -> dict:
    tags = [dict(BASE["tags"][0], **rules), BASE["tags"][1]]
    return {"version": "k1", "tags": tags}


def _load(tmp_path, body: str) -> Taxonomy:
    path = tmp_path / "t.yaml"
    path.write_text(body, encoding="utf-8")
    return load_taxonomy(path)


def test_keywords_per_language_or_for_all_languages(tmp_path):
    tax = _load(
        tmp_path,
        """
version: "1"
tags:
  - name: refund
    description: Money back for an order.
    keywords: {pt: [estorno, reembolso], en: [chargeback]}
    patterns: ['charge ?back']
  - name: late
    description: The parcel came late.
    keywords: [atraso, late delivery]
""",
    )
    refund, late = tax.tags
    assert refund.keywords == {"pt": ["estorno", "reembolso"], "en": ["chargeback"]}
    assert refund.patterns == {"*": ["charge ?back"]}
    assert late.keywords == {"*": ["atraso", "late delivery"]}


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"keywords": {"english": ["refund"]}}, "ISO 639-1"),
        ({"keywords": "refund"}, "write it as a list"),
        ({"patterns": {"en": ["refund("]}}, "not a valid regular expression"),
    ],
)
def test_bad_rules_stop_the_load_with_what_to_fix(tmp_path, rules, message):
    import yaml

    with pytest.raises(ConfigError, match=message) as err:
        _load(tmp_path, yaml.safe_dump(_with(**rules)))
    assert "t.yaml" in str(err.value)


def test_a_codeframe_without_rules_keeps_its_fingerprint():
    # The value the fingerprint had before rules existed (stored rows and versions still match it).
    assert Taxonomy.model_validate(BASE).fingerprint == "ab5673ae"
    with_rules = Taxonomy.model_validate(_with(keywords=["estorno"]))
    assert with_rules.fingerprint != "ab5673ae"


def test_keywords_match_whole_words_ignoring_case_and_accents():
    rules = KeywordRules(
        ["refund", "late"],
        keywords={"refund": {"pt": ["reembolso", "estorno"], "en": ["money back"]}},
        patterns={"late": {"*": [r"\b\d+ days? late\b"]}},
    )
    hits = rules.hits(
        [
            "Quero o REEMBOLSO já",
            "pedi o estôrno ontem",
            "I want my money   back",
            "reembolsos",  # another word: list the forms you mean
            "it came 3 days late",
            "nothing here",
        ]
    )
    assert hits[:, 0].tolist() == [True, True, True, False, False, False]
    assert hits[:, 1].tolist() == [False, False, False, False, True, False]


def test_a_rule_hit_is_a_strong_vote_not_the_only_path():
    rules = KeywordRules(["refund", "late"], keywords={"refund": {"*": ["estorno"]}})
    p = np.array([[0.1, 0.2], [0.9, 0.1], [0.0, 0.7]], dtype=np.float32)
    voted = rules.vote(p, ["estorno", "estorno please", "late parcel"])
    assert voted[0, 0] >= 0.8 and voted[1, 0] > 0.9  # the hit lifts the tag above any usual threshold
    assert voted[2, 1] == pytest.approx(0.7)  # no hit: the model alone decides
    assert voted[0, 1] == pytest.approx(0.2)


@pytest.fixture(scope="module")
def hashing():
    return build_embedder("hashing")


def test_zero_shot_tagger_takes_keyword_hits(hashing):
    tax = Taxonomy.model_validate(_with(keywords={"pt": ["estorno"]}))
    tagger = ZeroShotTagger(tax).fit(hashing)
    assert tagger.needs_texts  # the enrichment stage passes the texts to score()
    texts = ["cadê o meu estorno", "cadê o meu pacote"]
    tags, scores = tagger.predict(hashing.embed(texts), texts=texts)
    assert "refund" in tags[0] and "refund" not in tags[1]
    assert scores[0, 0] > 1.0 > scores[1, 0]
    assert not ZeroShotTagger(Taxonomy.model_validate(BASE)).fit(hashing).needs_texts


def test_trained_tagger_keeps_its_rules_when_saved(hashing, tmp_path):
    rng = np.random.default_rng(0)
    texts = [f"{w} order {k}" for k in range(40) for w in ("money back for", "parcel late for")]
    tags = [["refund"] if t.startswith("money") else ["late"] for t in texts]
    emb = hashing.embed(texts) + rng.normal(scale=0.01, size=(len(texts), hashing.dim)).astype(np.float32)
    model = EmbeddingTfidfTagger(cv=3, knn_k=5).fit(texts, emb, tags, tag_names=["refund", "late"])
    model.rules_ = KeywordRules(model.tag_names_, keywords={"refund": {"*": ["estorno"]}})
    model.save(tmp_path / "m")
    loaded = EmbeddingTfidfTagger.load(tmp_path / "m")
    query = ["about my order: estorno", "about my order"]
    tags_loaded, scores = loaded.predict(hashing.embed(query), texts=query)
    assert tags_loaded[0] == ["refund"] and scores[0, 0] >= max(0.8, scores[1, 0])
    loaded.rules_ = None
    assert loaded.score(hashing.embed(query), texts=query)[0, 0] < scores[0, 0]
