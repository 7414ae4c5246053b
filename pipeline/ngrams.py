"""Fast TF-IDF transform for fitted word and character n-gram vectorizers.

scikit-learn's ``TfidfVectorizer.transform`` generates and looks up every character n-gram of every text
in pure Python; on answers of a few sentences that is most of the time a trained sentiment model or
tagger spends once the embeddings exist (bench/README.md, "Sentiment"). With ``analyzer="char_wb"`` the
n-grams of a text are the n-grams of its whitespace-separated words, each taken on its own. So
:func:`tfidf_transform` counts the words of each text (a text x word matrix), finds the n-grams of each
*distinct* word once (a word x n-gram matrix), and multiplies the two. Word n-grams come from the
vectorizer's own analyzer; only their look-up and counting run as array operations. The result equals
``vectorizer.transform`` (a test checks it to float precision); any other vectorizer goes through
scikit-learn unchanged. Nothing is stored on the vectorizer: a fitted model is never mutated.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import Any

import numpy as np

_CHUNK = 50_000
"""Texts per block: each block has its own word table (bounds the memory of very large calls)."""


def _fast_path(vectorizer: Any) -> bool:
    return (
        getattr(vectorizer, "analyzer", None) in ("char_wb", "word")
        and getattr(vectorizer, "input", None) == "content"
        and getattr(vectorizer, "vocabulary_", None) is not None
        and getattr(vectorizer, "idf_", None) is not None
    )


def _by_word(vectorizer: Any) -> bool:
    """True when a text's n-grams are those of its words taken one by one (``char_wb``, no custom
    preprocessor), so that each distinct word can be analysed once."""
    return vectorizer.analyzer == "char_wb" and vectorizer.preprocessor is None


def tfidf_transform(vectorizer: Any, texts: Sequence[str]) -> Any:
    """``vectorizer.transform(texts)`` for ``word`` and ``char_wb`` vectorizers, faster.

    Args:
        vectorizer: A fitted scikit-learn ``TfidfVectorizer``.
        texts: The texts to transform.

    Returns:
        The sparse CSR TF-IDF matrix, equal to scikit-learn's.
    """
    if not _fast_path(vectorizer):
        return vectorizer.transform(texts)
    import scipy.sparse as sp
    from sklearn.preprocessing import normalize

    texts = list(texts)
    count = _char_wb_counts if _by_word(vectorizer) else _counts
    blocks = [count(vectorizer, texts[i : i + _CHUNK]) for i in range(0, len(texts), _CHUNK)]
    if not blocks:
        return sp.csr_matrix((0, len(vectorizer.vocabulary_)), dtype=vectorizer.dtype)
    x = sp.vstack(blocks, format="csr") if len(blocks) > 1 else blocks[0]
    if vectorizer.binary:
        x.data.fill(1)
    if vectorizer.sublinear_tf:
        np.log(x.data, x.data)
        x.data += 1.0
    if vectorizer.use_idf:
        x = sp.csr_matrix(x @ sp.diags(vectorizer.idf_))
    x = sp.csr_matrix(x, dtype=vectorizer.dtype)
    if vectorizer.norm is not None:
        x = normalize(x, norm=vectorizer.norm, copy=False)
    x.sort_indices()
    return x


def _n_char_wb(padded: int, min_n: int, max_n: int) -> int:
    """How many n-grams scikit-learn's ``char_wb`` analyzer gives a word of ``padded`` = len(word) + 2."""
    total = 0
    for n in range(min_n, max_n + 1):
        if padded > n:
            total += padded - n + 1
        else:  # the whole padded word, once, and no longer n-grams
            total += 1
            break
    return total


def _gram_counts(grams: Sequence[str], sizes: Sequence[int] | np.ndarray, vocabulary: dict[str, int]) -> Any:
    """A row per group of consecutive ``grams`` (``sizes[r]`` of them in row ``r``): how often each
    vocabulary entry occurs in it (n-grams outside the vocabulary are dropped, as scikit-learn does)."""
    import scipy.sparse as sp

    cols = np.fromiter(map(vocabulary.get, grams, repeat(-1)), dtype=np.int64, count=len(grams))
    rows = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
    known = cols >= 0
    counts = sp.csr_matrix(
        (np.ones(int(known.sum()), dtype=np.float64), (rows[known], cols[known])),
        shape=(len(sizes), len(vocabulary)),
    )
    counts.sum_duplicates()
    return counts


def _counts(vectorizer: Any, texts: Sequence[str]) -> Any:
    """Raw n-gram counts with the vectorizer's own analyzer; only the vocabulary look-up and counting
    (a Python loop per n-gram in scikit-learn) run as array operations."""

    analyze = vectorizer.build_analyzer()
    grams: list[str] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for row, text in enumerate(texts):
        found = analyze(text)
        grams.extend(found)
        lengths[row] = len(found)
    return _gram_counts(grams, lengths, vectorizer.vocabulary_)


def _char_wb_counts(vectorizer: Any, texts: Sequence[str]) -> Any:
    """Raw n-gram counts of ``texts`` (the ``CountVectorizer`` step), as text x word @ word x n-gram."""
    import scipy.sparse as sp

    preprocess = vectorizer.build_preprocessor()
    decode = vectorizer.decode
    word_id: dict[str, int] = {}
    ids: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for row, text in enumerate(texts):
        words = preprocess(decode(text)).split()
        ids.extend([word_id.setdefault(w, len(word_id)) for w in words])
        lengths[row] = len(words)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    text_word = sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float64), np.asarray(ids, dtype=np.int64), indptr),
        shape=(len(texts), len(word_id)),
    )

    words = list(word_id)
    min_n, max_n = vectorizer.ngram_range
    per_len: dict[int, int] = {}
    sizes = [per_len.setdefault(len(w), _n_char_wb(len(w) + 2, min_n, max_n)) for w in words]
    analyze = vectorizer.build_analyzer()
    # One call over all distinct words (separated by spaces) gives their n-grams in order; the counts
    # above say where each word's share ends. Should they ever disagree, each word is analysed alone.
    grams = analyze(" ".join(words))
    if len(grams) != sum(sizes):
        parts = [analyze(w) for w in words]
        sizes = [len(p) for p in parts]
        grams = [g for p in parts for g in p]
    word_gram = _gram_counts(grams, sizes, vectorizer.vocabulary_)
    counts = sp.csr_matrix(text_word @ word_gram)
    counts.sum_duplicates()
    return counts
