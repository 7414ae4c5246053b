"""The fast character n-gram TF-IDF transform equals scikit-learn's, for every option the models use."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

import pipeline.ngrams as ngrams
from pipeline.ngrams import tfidf_transform

TRAIN = [
    "The delivery was late and the box was damaged.",
    "Entrega atrasada, caixa danificada!",
    "Service très lent; personnel aimable.",
    "De bezorging was te laat, maar het personeel was vriendelijk",
    "Great price, great staff :)",
    "great great great",
    "Refund still pending after 3 weeks… @support",
    "İstanbul ÇAY  Straße ß",
] * 3
QUERIES = [
    "",
    "   ",
    "late delivery",
    "Late\tdelivery\n\nand   a DAMAGED box",
    "a",
    "ab",
    "İstanbul",
    "émoji 😀😀 !! 👍🏽",
    "x" * 300,
    "unseen words only: zyzzyva quokka",
    "great staff, great price, great great",
    "\u00a0non\u2009breaking\u3000spaces",
]


def _close(a, b) -> None:
    assert a.shape == b.shape
    assert a.dtype == b.dtype
    assert abs(a - b).max() <= (1e-6 if a.dtype == np.float32 else 1e-12)
    assert np.array_equal(a.indptr, b.indptr)
    assert np.array_equal(a.indices, b.indices)


@pytest.mark.parametrize(
    "options",
    [
        dict(ngram_range=(2, 5), min_df=2, sublinear_tf=True),
        dict(ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=150),
        dict(ngram_range=(2, 5), min_df=2, sublinear_tf=True, dtype=np.float32),
        dict(ngram_range=(1, 3), binary=True, norm=None),
        dict(ngram_range=(3, 4), use_idf=False, norm="l1"),
        dict(ngram_range=(2, 5), lowercase=False, strip_accents="unicode"),
    ],
)
def test_char_wb_transform_equals_sklearn(options) -> None:
    vec = TfidfVectorizer(analyzer="char_wb", **options).fit(TRAIN)
    before = pickle.dumps(vec)
    _close(tfidf_transform(vec, QUERIES), vec.transform(QUERIES))
    assert pickle.dumps(vec) == before  # the fitted model is not touched


@pytest.mark.parametrize(
    "options",
    [
        dict(ngram_range=(1, 2), min_df=2, sublinear_tf=True, dtype=np.float32),
        dict(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"(?u)[\w@']+|[^\w\s]"),
        dict(ngram_range=(2, 3), stop_words=["the", "was", "and"], binary=True),
        dict(ngram_range=(1, 1), max_features=20, norm=None),
    ],
)
def test_word_transform_equals_sklearn(options) -> None:
    vec = TfidfVectorizer(analyzer="word", **options).fit(TRAIN)
    before = pickle.dumps(vec)
    _close(tfidf_transform(vec, QUERIES), vec.transform(QUERIES))
    assert pickle.dumps(vec) == before


def test_char_wb_with_own_preprocessor_equals_sklearn() -> None:
    vec = TfidfVectorizer(analyzer="char_wb", preprocessor=lambda s: s.upper()[::-1]).fit(TRAIN)
    _close(tfidf_transform(vec, QUERIES), vec.transform(QUERIES))


def test_many_texts_across_blocks_equal_sklearn(monkeypatch) -> None:
    monkeypatch.setattr(ngrams, "_CHUNK", 5)
    texts = QUERIES * 4 + TRAIN
    for analyzer in ("char_wb", "word"):
        vec = TfidfVectorizer(analyzer=analyzer, ngram_range=(1, 3), sublinear_tf=True).fit(TRAIN)
        _close(tfidf_transform(vec, texts), vec.transform(texts))


def test_fallback_when_word_counts_disagree(monkeypatch) -> None:
    """If the n-gram count of a word were ever mis-predicted, each word is analysed alone: same result."""
    monkeypatch.setattr(ngrams, "_n_char_wb", lambda padded, lo, hi: 1)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit(TRAIN)
    _close(tfidf_transform(vec, QUERIES), vec.transform(QUERIES))


def test_other_vectorizers_go_through_sklearn() -> None:
    for vec in (
        TfidfVectorizer(analyzer="char", ngram_range=(2, 4)).fit(TRAIN),
        TfidfVectorizer(analyzer=lambda s: s.split("a")).fit(TRAIN),
    ):
        _close(tfidf_transform(vec, QUERIES), vec.transform(QUERIES))


def test_no_texts() -> None:
    vec = TfidfVectorizer(analyzer="char_wb").fit(TRAIN)
    out = tfidf_transform(vec, [])
    assert out.shape == (0, len(vec.vocabulary_))
