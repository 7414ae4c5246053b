"""Sentiment in the nightly run: per-tag sentiment from a trained aspect head, and the config's model_dir.

Fast: a word-hashing embedder, a keyword tagger and a model trained in the test on a handful of texts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.enrich import Models, enrich_batch, prepare_batch
from pipeline.prepare import PrepareConfig
from pipeline.sentiment import EmbeddingSentiment, PrototypeSentiment, sentiment_for_run
from pipeline.tagging.taxonomy import load_taxonomy
from pipeline.topics import NoTopics
from tests.test_sentiment import WordHashEmbedder

POSITIVE = ["great lovely service", "excellent fast friendly", "lovely great staff", "fast excellent help"]
NEGATIVE = ["awful slow service", "terrible rude broken", "slow awful staff", "broken terrible help"]


class KeywordTagger:
    """Tags a text with each tag whose name it contains (a stand-in for a trained tagger)."""

    tag_names_ = ["price", "support"]
    needs_texts = True
    version = "keywords-test"

    def score(self, embeddings: np.ndarray, texts: Sequence[str] | None = None) -> np.ndarray:
        return np.array([[float(t in str(x).lower()) for t in self.tag_names_] for x in texts or []])

    def decide(self, scores: np.ndarray) -> list[list[str]]:
        return [[t for t, s in zip(self.tag_names_, row, strict=True) if s > 0.5] for row in scores]


@pytest.fixture(scope="module")
def embedder() -> WordHashEmbedder:
    return WordHashEmbedder()


def _train(embedder: WordHashEmbedder, with_aspects: bool) -> EmbeddingSentiment:
    """Sentence head: the words' tone. Aspect head: "price" is always negative and "delivery" positive,
    whatever the words say ("support" it never sees)."""
    texts = [t for t in POSITIVE + NEGATIVE for _ in range(5)]
    labels = [("positive" if t in POSITIVE else "negative") for t in texts]
    aspects = [["price=negative", "delivery=positive"] for _ in texts] if with_aspects else None
    return EmbeddingSentiment(members=("embedding",), cv_folds=2, tune_bias=False).fit(
        embedder.embed(texts), labels, embedder_id=embedder.model_id, aspects=aspects
    )


def _enrich(model: object, embedder: WordHashEmbedder, comments: list[str]):
    valid = pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(len(comments))],
            "survey_type": "csat",
            "score": 4.0,
            "submitted_at": pd.Timestamp("2026-01-01"),
            "comment": comments,
        }
    )
    models = Models(
        embedder=embedder,  # type: ignore[arg-type]
        sentiment=model,  # type: ignore[arg-type]
        tagger=KeywordTagger(),  # type: ignore[arg-type]
        taxonomy=load_taxonomy(DEFAULT_CONFIG.parent / "taxonomy.yaml"),
        topics=NoTopics(),
    )
    prepared = prepare_batch(valid, PrepareConfig(languages=("en",)))
    return enrich_batch(valid, prepared, models, [], "run-1", datetime(2026, 1, 2))


def test_tag_sentiment_comes_from_the_aspect_head_in_one_call(embedder, monkeypatch):
    model = _train(embedder, with_aspects=True)
    assert model.aspect_tags_ == ["delivery", "price"]
    comments = ["great lovely service, fair price", "excellent fast friendly price", "lovely great support"]
    calls: list[int] = []
    score_tags = model.score_tags

    def counted(embeddings, texts, tags):
        calls.append(len(tags))
        return score_tags(embeddings, texts, tags)

    monkeypatch.setattr(model, "score_tags", counted)
    batch = _enrich(model, embedder, comments)
    assert calls == [2]  # one call for every (answer, tag) pair of the batch the head knows

    tags = batch.tags.set_index(["response_id", "tag"])
    sents = batch.sentences.set_index("response_id")
    for rid in ("r0", "r1"):
        # The sentence says positive; the aspect head says the price is negative, and the row says so.
        assert sents.loc[rid, "sentiment_label"] == "positive"
        assert tags.loc[(rid, "price"), "sentiment_label"] == "negative"
        assert tags.loc[(rid, "price"), "sentiment_score"] <= -model.neutral_band
    # A tag the head never saw keeps the mean of its sentences.
    assert tags.loc[("r2", "support"), "sentiment_score"] == pytest.approx(sents.loc["r2", "sentiment_score"])
    assert tags.loc[("r2", "support"), "sentiment_label"] == "positive"


def test_models_without_an_aspect_head_keep_the_sentence_mean(embedder):
    comments = ["great lovely service, fair price", "awful slow support. great lovely price"]
    for model in (_train(embedder, with_aspects=False), PrototypeSentiment().fit(embedder)):
        batch = _enrich(model, embedder, comments)
        sents = batch.sentences
        for row in batch.tags.itertuples():
            carriers = sents[
                (sents["response_id"] == row.response_id) & sents["tags"].map(lambda ts, t=row.tag: t in ts)
            ]
            assert row.sentiment_score == pytest.approx(carriers["sentiment_score"].mean())
    # The second answer's price sentence is positive even though the answer also complains.
    trained = _enrich(_train(embedder, with_aspects=False), embedder, comments).tags
    assert trained.set_index(["response_id", "tag"]).loc[("r1", "price"), "sentiment_label"] == "positive"


def test_a_relative_sentiment_model_dir_is_read_from_the_configs_folder(embedder, tmp_path, monkeypatch):
    model = _train(embedder, with_aspects=True)
    model.save(tmp_path / "models" / "sentiment")
    (tmp_path / "configs").mkdir()
    cfg = tmp_path / "configs" / "enrichment.yaml"
    cfg.write_text(
        json.dumps(
            {
                "sentiment": {
                    "name": "sentiment.embedding_lr.v1",
                    "options": {"model_dir": "../models/sentiment", "other": 1},
                }
            }
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(cfg)
    assert config.sentiment.options == {"model_dir": str(tmp_path / "models" / "sentiment"), "other": 1}
    # Overrides re-resolve against the current directory: the path is absolute already and stays.
    assert load_config(cfg, batch_size=10).sentiment.options["model_dir"] == str(
        tmp_path / "models" / "sentiment"
    )
    loaded = sentiment_for_run(config.sentiment.name, config.sentiment.options, embedder)
    assert loaded.version == model.version
    # The default (zero-shot, no options) is untouched.
    assert load_config(DEFAULT_CONFIG).sentiment.model_dump() == {
        "name": "sentiment.prototype.v1",
        "options": {},
    }


def test_answers_and_sentences_are_scored_once_per_distinct_input():
    """Repeated answers and single-sentence answers are not scored again, and nothing changes."""
    from pipeline.enrich import score_answers_and_sentences

    rng = np.random.default_rng(0)
    vec = {t: rng.normal(size=4).astype(np.float32) for t in ["Great service.", "Slow.", "Rude staff.", "Ok"]}
    resp_texts = ["Great service.", "Slow. Rude staff.", "Great service.", "Ok", "Slow."]
    resp_sents = [["Great service."], ["Slow.", "Rude staff."], ["Great service."], ["Ok"], ["Slow."]]
    resp_emb = np.stack(
        [vec[s[0]] if len(s) == 1 else (vec["Slow."] + vec["Rude staff."]) / 2 for s in resp_sents]
    )
    sent_texts = [s for ss in resp_sents for s in ss]
    sent_emb = np.stack([vec[s] for s in sent_texts])
    calls: list[tuple[int, list[str]]] = []

    def score(emb: np.ndarray, texts: Sequence[str]) -> np.ndarray:
        calls.append((len(emb), list(texts)))
        return emb.sum(axis=1) + np.array([len(t) for t in texts])

    resp, sent = score_answers_and_sentences(
        score, resp_emb, resp_texts, resp_sents, sent_emb, sent_texts, with_texts=True
    )
    assert len(calls) == 1
    # 4 distinct sentences plus the one two-sentence answer; "Slow." as an answer and as a sentence is one.
    assert calls[0][0] == 5 and sorted(calls[0][1]).count("Slow.") == 1
    assert np.allclose(resp, score(resp_emb, resp_texts))
    assert np.allclose(sent, score(sent_emb, sent_texts))
    # The two-sentence answer is scored as itself, not as one of its sentences.
    assert resp[1] != sent[1] and resp[1] != sent[2]


def test_scoring_once_handles_empty_batches_and_models_without_texts():
    from pipeline.enrich import score_answers_and_sentences

    def score(emb: np.ndarray) -> np.ndarray:
        return np.zeros((len(emb), 3))

    resp, sent = score_answers_and_sentences(
        score, np.zeros((0, 4), np.float32), [], [], np.zeros((0, 4), np.float32), [], with_texts=False
    )
    assert resp.shape == (0, 3) and sent.shape == (0, 3)


def test_a_batch_of_non_answers_only_is_enriched_without_scores(embedder):
    batch = _enrich(_train(embedder, with_aspects=True), embedder, ["", "n/a", "-"])
    assert len(batch.enriched) == 3
    assert batch.enriched["is_non_answer"].all()
    assert batch.tags.empty and batch.sentences.empty
