import numpy as np
import pandas as pd
import pytest

from pipeline.embed import (
    CachedEmbedder,
    MemoryVectorStore,
    build_embedder,
    resolve_embedder_name,
    text_hash,
)
from pipeline.errors import FeedbackError, UnknownComponentError


class CountingEmbedder:
    """Records what it is asked to encode."""

    model_id = "counting-1"
    dim = 8

    def __init__(self):
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        rng = np.random.default_rng(len(self.calls))
        v = rng.normal(size=(len(texts), self.dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cache_encodes_each_distinct_text_once_across_calls():
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, MemoryVectorStore())
    first = cached.embed(["a", "b", "a"])
    assert inner.calls == [["a", "b"]]
    assert cached.misses_ == 2 and cached.hits_ == 0
    np.testing.assert_array_equal(first[0], first[2])
    second = cached.embed(["b", "c", "a"])
    assert inner.calls[-1] == ["c"]
    assert cached.hits_ == 2 and cached.misses_ == 1
    np.testing.assert_array_equal(second[0], first[1])
    np.testing.assert_array_equal(second[2], first[0])


def test_cache_is_keyed_by_model_id():
    store = MemoryVectorStore()
    a, b = CountingEmbedder(), CountingEmbedder()
    b.model_id = "counting-2"
    CachedEmbedder(a, store).embed(["x"])
    CachedEmbedder(b, store).embed(["x"])
    assert b.calls == [["x"]]


def test_cache_empty_input():
    out = CachedEmbedder(CountingEmbedder(), MemoryVectorStore()).embed([])
    assert out.shape == (0, 8)


@pytest.mark.parametrize(
    "bad, hint",
    [("just one string", "wrap it"), (pd.DataFrame({"text": ["a"]}), "DataFrame"), (["ok", None], "strings")],
)
def test_embed_input_guards_say_how_to_fix(bad, hint):
    with pytest.raises(FeedbackError, match=hint):
        build_embedder("hashing").embed(bad)


def test_hashing_embedder_is_deterministic_and_normalised():
    e = build_embedder("hashing", dim=64)
    v1, v2 = e.embed(["the parcel was late", "the parcel was late"]), e.embed(["the parcel was late"])
    np.testing.assert_array_equal(v1[0], v2[0])
    assert np.allclose(np.linalg.norm(v1, axis=1), 1.0)
    base, close, unrelated = e.embed(["the parcel was late", "the parcel was very late", "refund my card"])
    assert base @ close > base @ unrelated + 0.2


def test_unknown_embedder_lists_valid_names():
    with pytest.raises(UnknownComponentError, match="embedder.usem3.v1"):
        resolve_embedder_name("word2vec")


def test_text_hash_distinguishes_texts():
    assert text_hash("a") != text_hash("b") and text_hash("a") == text_hash("a")


@pytest.mark.slow
def test_default_encoder_is_multilingual():
    e = build_embedder("usem3")
    v = e.embed(
        ["My order arrived two weeks late", "Meu pedido chegou com duas semanas de atraso", "I love the app"]
    )
    assert v.shape == (3, 512) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1


def test_response_vectors_are_sentence_means_encoded_once_and_cached():
    from pipeline.embed.response import response_model_id, response_vectors

    inner = CountingEmbedder()
    store = MemoryVectorStore()
    cached = CachedEmbedder(inner, store)
    texts = ["Late. Rude.", "Great"]
    sents = [["Late.", "Rude."], ["Great"]]
    sv = cached.embed(["Late.", "Rude.", "Great"])
    out = response_vectors(cached, texts, sents, "sentence_mean")
    expected = (sv[0] + sv[1]) / np.linalg.norm(sv[0] + sv[1])
    np.testing.assert_allclose(out[0], expected, rtol=1e-5)
    np.testing.assert_allclose(out[1], sv[2], rtol=1e-6)
    assert len(inner.calls) == 1  # sentences came from the cache; nothing encoded again
    # the answers' vectors are cached under their own id, so no sentences are needed later
    again = response_vectors(cached, texts, None, "sentence_mean")
    np.testing.assert_array_equal(again, out)
    assert len(inner.calls) == 1
    assert response_model_id(cached, "sentence_mean") == "counting-1+sentmean"
    whole = response_vectors(cached, texts, sents, "whole")
    assert inner.calls[-1] == ["Late. Rude."]  # whole mode encodes the full answer
    assert whole.shape == (2, 8)


def test_concat_embedder_is_unit_length_and_averages_member_similarities():
    e = build_embedder(
        "concat", members=["hashing", "hashing"], member_options={"hashing": {"dim": 64, "ngram": (2, 4)}}
    )
    texts = ["late delivery again", "delivery was late", "great support team"]
    v = e.embed(texts)
    member = build_embedder("hashing", dim=64, ngram=(2, 4)).embed(texts)
    assert v.shape == (3, 128) and e.dim == 128
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    # dot products are the mean of the members' cosines (here two identical members)
    assert np.allclose(v @ v.T, member @ member.T, atol=1e-5)
    assert e.model_id == "concat(hashing-64-24,hashing-64-24)"  # keys the cache: differs from a member's


def test_concat_embedder_needs_two_members():
    with pytest.raises(FeedbackError, match="at least two members"):
        build_embedder("concat", members=["hashing"])


def test_concat_reads_each_member_from_the_file_cache(tmp_path):
    from pipeline.tagging.data import embed_texts_of_file

    texts = ["one answer", "another answer"]
    src = tmp_path / "labels.parquet"
    a, b = build_embedder("hashing", dim=32), build_embedder("hashing", dim=48)
    cache = tmp_path / "cache"
    embed_texts_of_file(src, texts, a, cache, cache_key="a")
    embed_texts_of_file(src, texts, b, cache, cache_key="b")

    class Counting:
        def __init__(self, inner):
            self.inner, self.model_id, self.dim, self.calls = inner, inner.model_id, inner.dim, 0

        def embed(self, t):
            self.calls += 1
            return self.inner.embed(t)

    concat = build_embedder("concat", members=["hashing", "hashing"])
    concat.members = [Counting(a), Counting(b)]
    v = embed_texts_of_file(src, texts, concat, cache)
    assert v.shape == (2, 80) and all(m.calls == 0 for m in concat.members)
    assert np.allclose(v, np.hstack([a.embed(texts), b.embed(texts)]) / np.sqrt(2), atol=1e-6)


def test_texts_digest_is_the_one_fingerprint_of_a_list_of_texts():
    """Cache keys and manifests written before the digest had one home must still match: these are the
    values the earlier copies (tagging.data.texts_digest, sentiment.base.texts_hash) gave."""
    from pipeline.embed import texts_digest

    assert (
        texts_digest(["a", "ção", ""]) == "5aae273a843d95201358fd503a2b3e2821871cc3cc0fb88c614edcadeb6b9417"
    )
    assert (
        texts_digest(["a", "b"], ["positive", 1])
        == "93dbb1c39cfa43c8245abe8055f8a0bcdc819134cf335aa405319328c30b2999"
    )
    assert texts_digest(["a", "b"]) != texts_digest(["ab"])  # each text ends with NUL
