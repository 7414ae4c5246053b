"""The nightly topic model is a BERTopic: its own API works on it, and its files round-trip exactly."""

from __future__ import annotations

import base64
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.topics import BERTopicModel, LanguageCentredPCA, StableClusters, build_topics

DIM = 32
WORDS = [
    ["late", "parcel", "delivery", "courier"],
    ["charged", "twice", "invoice", "refund"],
    ["friendly", "helpful", "agent", "support"],
    ["crashes", "login", "update", "screen"],
]


def _window(n_per: int = 40, seed: int = 3) -> tuple[list[str], np.ndarray, list[str], np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(len(WORDS), DIM)) * 3.0
    x = np.concatenate([c + rng.normal(size=(n_per, DIM)) * 0.4 for c in centers]).astype(np.float32)
    truth = np.repeat(np.arange(len(WORDS)), n_per)
    texts = [" ".join(rng.choice(WORDS[t], 3)) + f" note{i % 5}" for i, t in enumerate(truth)]
    langs = ["en", "pt"] * (len(truth) // 2)
    return texts, x / np.linalg.norm(x, axis=1, keepdims=True), langs, truth


def _fit():
    texts, emb, langs, truth = _window()
    model = build_topics("topics.stable.v1", languages=["en"], min_topic_size=10).fit(
        texts, emb, languages=langs
    )
    return model, texts, emb, langs, truth


def test_the_nightly_model_is_a_bertopic_whose_own_api_works():
    from bertopic import BERTopic

    model, texts, emb, langs, truth = _fit()
    assert isinstance(model, BERTopic)
    assert isinstance(model.umap_model, LanguageCentredPCA) and isinstance(
        model.hdbscan_model, StableClusters
    )
    info = model.get_topic_info()
    assert len(info[info["Topic"] >= 0]) == len(model.topic_ids_) == 4
    assert {"Topic", "Count", "Name", "Representation"} <= set(info.columns)
    words = {w for t in range(4) for w, _ in model.get_topic(t)}
    assert {"parcel", "invoice", "agent", "login"} & words
    # BERTopic's transform (its ids) agrees with the pipeline's (registry ids) and with the fit
    ids, _ = model.transform(texts, embeddings=emb, languages=langs)
    np.testing.assert_array_equal(model.topic_ids_[np.asarray(ids)], model.labels_)
    np.testing.assert_array_equal(np.asarray(ids), np.asarray(model.topics_))
    stamps = pd.date_range("2026-01-01", periods=len(texts), freq="h")
    over_time = model.topics_over_time(texts, list(stamps), nr_bins=4)
    assert len(over_time) and set(over_time["Topic"]) <= {-1, 0, 1, 2, 3}
    model.reduce_topics(texts, nr_topics=3)
    assert len(model.get_topic_info().query("Topic >= 0")) == 3
    with pytest.raises(ValueError, match="reduced or merged"):
        model.transform(emb, languages=langs)  # registry ids no longer apply: refit or reload


def test_load_then_transform_gives_exactly_the_fit_labels(tmp_path):
    from pipeline.model_store import check_files

    model, texts, emb, langs, truth = _fit()
    model.relabel({int(t): int(t) + 50 for t in model.topic_ids_})
    folder = model.save_version(tmp_path / model.version, {"model_id": "test"}, {"outlier_share": 0.0})
    check_files(folder)  # data files only (json, npy, safetensors)
    assert (folder / "bertopic" / "ctfidf.safetensors").exists()
    back = BERTopicModel.load(folder)
    assert type(back) is type(model) and back.version == model.version
    np.testing.assert_array_equal(back.transform(emb, languages=langs), model.labels_)
    np.testing.assert_array_equal(back.transform(emb), model.transform(emb))
    # BERTopic's safetensors save keeps no representative documents (the topic table keeps our quotes)
    keep = ["Topic", "Count", "Name", "Representation"]
    pd.testing.assert_frame_equal(back.get_topic_info()[keep], model.get_topic_info()[keep])
    pd.testing.assert_frame_equal(back.topic_table(), model.topic_table())
    assert back.c_tf_idf_.shape == model.c_tf_idf_.shape
    assert len(
        back.topics_over_time(
            texts, list(pd.date_range("2026-01-01", periods=len(texts), freq="h")), nr_bins=2
        )
    )


def test_a_version_written_by_the_earlier_release_loads_and_assigns_the_same(tmp_path):
    model, texts, emb, langs, truth = _fit()
    reducer = model.umap_model
    order = sorted(reducer.language_means_)

    def b64(a: np.ndarray) -> str:
        return base64.b64encode(np.ascontiguousarray(a, dtype="<f4").tobytes()).decode("ascii")

    # The earlier files: topics.json (means as base64) + centroids.npy in the centred space.
    meta = {
        "name": "topics.stable.v1",
        "version": model.version,
        "fitted_at": model.fitted_at_.isoformat(),
        "topic_ids": [int(t) for t in model.topic_ids_],
        "keywords": {str(k): v for k, v in model.keywords_.items()},
        "quotes": {str(k): v for k, v in model.quotes_.items()},
        "sizes": {str(k): v for k, v in model.sizes_.items()},
        "suggested_tags": {},
        "tag_shares": {},
        "fit_outlier_share": model.fit_outlier_share_,
        "fit_languages": ["en", "pt"],
        "dim": DIM,
        "language_order": order,
        "language_means": b64(np.stack([reducer.language_means_[k] for k in order])),
        "overall_mean": b64(reducer.overall_mean_[None, :]),
        "params": {"languages": ["en"], "min_topic_size": 10, "assign_threshold": 0.2, "n_components": 64},
    }
    folder = tmp_path / "old"
    folder.mkdir()
    (folder / "topics.json").write_text(json.dumps(meta))
    # one row per topic in topic_ids_ order (BERTopic's), in the centred (unrotated) space
    mapping = model.topic_mapper_.get_mappings(original_topics=True)
    rows = [next(c for c, j in mapping.items() if j == t) for t in range(len(model.topic_ids_))]
    np.save(folder / "centroids.npy", model.hdbscan_model.centroids_[rows] @ reducer.rotation_.T)
    back = BERTopicModel.load(folder)
    assert type(back) is type(model) and back.version == model.version
    np.testing.assert_array_equal(back.transform(emb, languages=langs), model.labels_)
    assert list(back.topic_table()["keywords"]) == list(model.topic_table()["keywords"])
    assert len(back.get_topic_info()) == len(model.topic_ids_) + 1
    resaved = BERTopicModel.load(back.save(tmp_path / "resaved"))  # converted to this release's files
    np.testing.assert_array_equal(resaved.transform(emb, languages=langs), model.labels_)


def test_importing_the_topics_package_does_not_import_bertopic():
    import subprocess
    import sys

    code = "import sys, pipeline.topics; print('bertopic' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
