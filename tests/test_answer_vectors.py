"""Models trained and measured on files read the vectors and the text the nightly run gives them.

The nightly run gives an answer the mean of its sentences' vectors, computed on the prepared (PII-redacted)
text. A tagger trained on whole-text vectors of raw text and then fed those lost 4 points of micro F1 on
multi-sentence reviews, and a sentiment model 4 points of macro F1 on tweets (bench/README.md, "Answer
vectors"). These tests pin the consistency down with the fast hashing encoder.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.demo.sample import generate_survey
from pipeline.embed import CachedEmbedder, MemoryVectorStore, build_embedder, l2_normalise, text_hash
from pipeline.embed.response import AnswerEmbedder, answer_embedder, response_vectors
from pipeline.model_store import read_manifest
from pipeline.prepare import PrepareConfig, model_texts, prepare
from pipeline.tagging.data import read_labelled_files
from pipeline.tagging.lifecycle import tagger_for_run
from pipeline.tagging.taxonomy import load_taxonomy

MESSY = [
    "Delivery was late. The driver was rude!",
    "Write to me at jane.doe@example.com, or call +44 20 7946 0958. The refund never came.",
    None,
    b"bytes \xff with a bad byte. Second sentence here.",
    "  spaces\tand\nnew lines.  Another one?  ",
    "Une seule phrase sans point",
    "x " * 4000,
]


@pytest.fixture(scope="module")
def hashing():
    return build_embedder("hashing")


def _labelled(n: int = 240, seed: int = 3) -> pd.DataFrame:
    df = generate_survey(n=n, seed=seed, with_truth=True)
    out = pd.DataFrame({"id": df["response_id"], "text": df["comment"], "tags": df["true_tags"]})
    out = out[out["text"].fillna("").str.strip().str.len() > 0].drop_duplicates("id")
    return out.reset_index(drop=True)


def test_model_texts_are_the_nightly_runs_redacted_texts():
    expected = prepare(pd.DataFrame({"comment": MESSY}))["text_redacted"].tolist()
    assert model_texts(MESSY) == expected
    assert "[EMAIL]" in model_texts(MESSY)[1] and "example.com" not in model_texts(MESSY)[1]
    assert len(model_texts(MESSY, PrepareConfig(max_chars=100))[-1]) <= 100


def test_answer_vector_is_the_mean_of_its_sentences(hashing):
    answers = AnswerEmbedder(hashing)
    two, one = "Delivery was late. The driver was rude!", "Delivery was late."
    got = answers.embed([two, one], languages=["en", "en"])
    parts = hashing.embed(["Delivery was late.", "The driver was rude!"])
    np.testing.assert_allclose(got[0], l2_normalise(parts.mean(axis=0, keepdims=True))[0], atol=1e-6)
    np.testing.assert_allclose(got[1], hashing.embed([one])[0], atol=1e-6)
    # The whole text's own vector is another vector: the skew this module guards against.
    assert float(got[0] @ hashing.embed([two])[0]) < 0.99
    np.testing.assert_allclose(AnswerEmbedder(hashing, "whole").embed([two]), hashing.embed([two]), atol=1e-6)
    # Same encoder identity (manifests, load checks), another cache key (never mixed with encoder vectors).
    assert answers.model_id == hashing.model_id and answers.dim == hashing.dim
    assert answers.cache_id != hashing.model_id
    with pytest.raises(ValueError, match="sentence_mean"):
        AnswerEmbedder(hashing, "average")  # type: ignore[arg-type]


def test_answer_vectors_are_cached_under_their_own_id(hashing):
    store = MemoryVectorStore()
    answers = AnswerEmbedder(CachedEmbedder(hashing, store))
    texts = ["Late again. Never again.", "Fine."]
    first = answers.embed(texts, languages=["en", "en"])
    again = AnswerEmbedder(CachedEmbedder(build_embedder("hashing"), store))
    np.testing.assert_array_equal(again.embed(texts, languages=["en", "en"]), first)
    assert again.base.misses_ == 0  # read from the cache: nothing encoded
    stored = store.read_vectors(answers.cache_id, [text_hash(texts[0])])
    assert len(stored) == 1


def test_training_vectors_are_the_vectors_the_nightly_run_makes(hashing, tmp_path):
    """Text, PII redaction, language detection, sentence split, mean: file rows get exactly the nightly
    run's answer vectors."""
    comments = [m for m in MESSY if isinstance(m, str) and m.strip()]
    prepared = prepare(pd.DataFrame({"comment": comments}))
    nightly = response_vectors(
        hashing, prepared["text_redacted"].tolist(), prepared["sentences"].tolist(), "sentence_mean"
    )
    path = tmp_path / "labels.csv"
    pd.DataFrame({"text": comments, "tags": ["a"] * len(comments)}).to_csv(path, index=False)
    data = read_labelled_files([path], answer_embedder(hashing), tmp_path / "cache")
    assert data.texts == prepared["text_redacted"].tolist()
    np.testing.assert_allclose(data.embeddings, nightly, atol=1e-6)
    # The file cache keeps answer vectors apart from encoder vectors of the same file.
    (meta,) = (tmp_path / "cache").glob("*/labels.meta.json")
    assert json.loads(meta.read_text())["model_id"] == answer_embedder(hashing).cache_id
    plain = read_labelled_files([path], hashing, tmp_path / "cache")
    assert not np.allclose(plain.embeddings, data.embeddings)


def _config_file(tmp_path, registry) -> str:
    cfg = tmp_path / "enrichment.yaml"
    body = {
        "warehouse": str(tmp_path / "wh.duckdb"),
        "state_dir": str(tmp_path / "state"),
        "embedder": {"name": "hashing"},
        "topics": {"name": "topics.none.v1"},
        "tagger": {"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"), "model_dir": str(registry)},
    }
    cfg.write_text(json.dumps(body))
    return str(cfg)


def test_cli_versions_record_their_answer_vectors_and_the_run_warns_on_others(tmp_path, caplog):
    data = tmp_path / "train.parquet"
    _labelled().to_parquet(data)
    cfg = _config_file(tmp_path, tmp_path / "registry")
    version = tmp_path / "registry" / "v1"
    assert main(["tagger", "train", "--config", cfg, "--data", str(data), "--out", str(version)]) == 0
    manifest = read_manifest(version)
    assert manifest["encoder"]["response_vector"] == "sentence_mean"
    (tmp_path / "registry" / "promoted.json").write_text(json.dumps({"version": "v1", "path": "v1"}))
    config = load_config(cfg)
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    with caplog.at_level(logging.WARNING, logger="pipeline.tagging.lifecycle"):
        tagger_for_run(config, taxonomy, build_embedder("hashing"))
    assert not [r for r in caplog.records if "answer vectors" in r.getMessage()]
    # A version trained before answer vectors were recorded was trained on whole-text vectors.
    manifest["encoder"].pop("response_vector")
    (version / "manifest.json").write_text(json.dumps(manifest))
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pipeline.tagging.lifecycle"):
        tagger_for_run(config, taxonomy, build_embedder("hashing"))
    assert any("'whole' answer vectors" in r.getMessage() for r in caplog.records)


def test_cli_sentiment_models_record_their_answer_vectors_and_the_run_warns_on_others(tmp_path, caplog):
    from pipeline.sentiment import load_sentiment, sentiment_for_run

    df = generate_survey(n=300, seed=4, with_truth=True)
    rows = pd.DataFrame({"text": df["comment"], "sentiment": df["true_sentiment"]}).dropna()
    data = tmp_path / "train.parquet"
    rows.to_parquet(data)
    out = tmp_path / "model"
    args = ["sentiment", "train", "--data", str(data), "--out", str(out), "--embedder", "hashing"]
    assert main([*args, "--members", "embedding", "--cv-folds", "2"]) == 0
    model = load_sentiment(out)
    assert model.embedder_spec_["response_vector"] == "sentence_mean"
    with caplog.at_level(logging.WARNING, logger="pipeline.sentiment"):
        sentiment_for_run(model.name, {"model_dir": str(out)}, build_embedder("hashing"))
        assert not [r for r in caplog.records if "answer vectors" in r.getMessage()]
        sentiment_for_run(
            model.name, {"model_dir": str(out)}, build_embedder("hashing"), response_vector="whole"
        )
    assert any("'sentence_mean' answer vectors" in r.getMessage() for r in caplog.records)


def test_answer_tags_rule_per_tagger_kind():
    from pipeline.tagging import EmbeddingTfidfTagger, ZeroShotTagger, answer_tags

    class Union:
        tags_from_sentences = True

    class Whole:
        tags_from_sentences = False

    sentences = [(0, ["b"]), (1, ["a", "c"]), (2, [])]
    assert answer_tags(Union(), ["a"], sentences) == {"a": [1], "b": [0], "c": [1]}
    assert answer_tags(Whole(), ["a"], sentences) == {"a": [1]}
    assert answer_tags(Whole(), [], sentences) == {}
    assert answer_tags(object(), ["a"], sentences) == {"a": [1], "b": [0], "c": [1]}  # default: union
    assert ZeroShotTagger.tags_from_sentences and not EmbeddingTfidfTagger.tags_from_sentences


def test_nightly_tags_of_a_trained_tagger_are_its_answer_level_decision(hashing, tmp_path):
    """One reason per answer: the nightly run must not add the reasons single sentences get."""
    from pipeline.demo.sample import write_export
    from pipeline.ingest.load import load_export
    from pipeline.model_store import FolderStore
    from pipeline.runner import run_enrichment
    from pipeline.tagging import EmbeddingTfidfTagger
    from pipeline.tagging.lifecycle import TrainInfo, encoder_spec, save_version
    from pipeline.warehouse import open_warehouse
    from tests.test_pipeline_e2e import make_config

    labels = _labelled(400, seed=8)
    labels = labels.assign(tags=labels["tags"].map(lambda t: list(t)[:1]))  # at most one tag per answer
    texts = model_texts(labels["text"].tolist())
    answers = answer_embedder(hashing)
    model = EmbeddingTfidfTagger().fit(
        texts, answers.embed(texts), labels["tags"].tolist(), embedder_id=hashing.model_id
    )
    assert model.max_tags_ == 1
    info = TrainInfo(
        mode="full",
        tag_source="data",
        taxonomy_version=None,
        rows=len(texts),
        data_sha256="x",
        sources=["test"],
        label_counts={},
        seconds=0.0,
    )
    folder = save_version(model, tmp_path / "reg" / "v1", info, encoder_spec("hashing", {}, answers))
    FolderStore(tmp_path / "reg", "tagger").promote(folder, {"micro_f1": 0.9}, None)
    config = load_config(
        make_config(
            tmp_path,
            embedder={"name": "hashing"},
            topics={"name": "topics.none.v1"},
            tagger={
                "taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"),
                "model_dir": str(tmp_path / "reg"),
            },
        )
    )
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(generate_survey(n=200, seed=9), tmp_path / "s.parquet"), wh, config)
    run_enrichment(config)
    with open_warehouse(config.warehouse) as wh:
        enr, sents = wh.read("feedback_enriched"), wh.read("feedback_sentences")
    answered = enr[~enr["is_non_answer"].astype(bool)]
    assert answered["tags"].map(len).max() == 1  # never two reasons for one answer
    # ... although single sentences do carry other reasons than their answer's.
    per_answer = sents.groupby("response_id")["tags"].agg(lambda s: {t for ts in s for t in ts})
    own = answered.set_index("response_id")["tags"].map(set)
    assert any(per_answer.get(rid, set()) - own[rid] for rid in own.index)


def test_the_zero_shot_tagger_is_measured_with_its_sentences_as_the_nightly_run_applies_it(hashing):
    from pipeline.tagging import ZeroShotTagger
    from pipeline.tagging.data import LabelledData
    from pipeline.tagging.evaluation import evaluate_tagger, predict_tags

    taxonomy = load_taxonomy(DEFAULT_CONFIG.parent / "taxonomy.yaml")
    model = ZeroShotTagger(taxonomy).fit(hashing)
    by_name = {t.name: t for t in taxonomy.tags}
    first, second = by_name["delivery_delay"], by_name["refund"]
    text = f"{first.examples[0].rstrip('.!?')}. {second.examples[0].rstrip('.!?')}."
    texts = model_texts([text])
    frame = pd.DataFrame({"id": ["r1"], "text": texts, "tags": [[first.name, second.name]], "lang": ["en"]})
    data = LabelledData(
        frame, answer_embedder(hashing).embed(texts, languages=["en"]), ["t"], hashing.model_id
    )
    alone, _ = predict_tags(model, data)
    nightly, _ = predict_tags(model, data, answer_embedder(hashing))
    assert {first.name, second.name} <= set(nightly[0]) and set(alone[0]) <= set(nightly[0])
    assert set(alone[0]) != set(nightly[0])  # the answer's own vector misses one of the two themes
    assert evaluate_tagger(model, data, hashing)["micro_f1"] >= evaluate_tagger(model, data)["micro_f1"]


def test_file_commands_prepare_texts_with_the_configs_options(tmp_path):
    """A file is cut at the config's max_chars, as the nightly run cuts answers: predicting a long text
    under a 100-character limit gives what predicting its first 100 characters gives."""
    from pipeline.sentiment.lifecycle import read_labelled
    from pipeline.topics.evaluation import read_topic_data

    df = generate_survey(n=300, seed=4, with_truth=True)
    rows = pd.DataFrame({"text": df["comment"], "sentiment": df["true_sentiment"]}).dropna()
    rows.to_parquet(tmp_path / "train.parquet")
    model = tmp_path / "model"
    train = ["sentiment", "train", "--data", str(tmp_path / "train.parquet"), "--out", str(model)]
    assert main([*train, "--embedder", "hashing", "--members", "embedding", "--cv-folds", "2"]) == 0

    head = "The staff were lovely and helpful. Great prices and a fast delivery, thanks a lot!"
    long_text = head + " Then everything went wrong: broken, late, rude, refund refused. " * 20
    pd.DataFrame({"id": ["a"], "text": [long_text]}).to_parquet(tmp_path / "long.parquet")
    short = model_texts([long_text], PrepareConfig(max_chars=100))[0]
    assert len(short) <= 100 and short.startswith("The staff")
    pd.DataFrame({"id": ["a"], "text": [short]}).to_parquet(tmp_path / "short.parquet")

    cfg = _config_file(tmp_path, tmp_path / "registry")
    body = json.loads(Path(cfg).read_text())
    body["prepare"] = {"max_chars": 100}
    limited = tmp_path / "limited.yaml"
    limited.write_text(json.dumps(body))

    def predict(data: str, config: str) -> float:
        out = tmp_path / f"pred_{data}_{len(config)}.parquet"
        args = ["sentiment", "predict", "--model", str(model), "--data", str(tmp_path / data)]
        assert main([*args, "--out", str(out), "--config", config]) == 0
        return float(pd.read_parquet(out)["sentiment_score"].iloc[0])

    assert predict("long.parquet", str(limited)) == pytest.approx(predict("short.parquet", cfg), abs=1e-6)
    assert predict("long.parquet", str(limited)) != pytest.approx(predict("long.parquet", cfg), abs=1e-3)
    # The readers behind the tagger and topics commands take the same options.
    pd.DataFrame({"id": ["a"], "text": [long_text], "tags": [["x"]]}).to_parquet(tmp_path / "lab.parquet")
    options = PrepareConfig(max_chars=100)
    assert read_labelled_files([tmp_path / "lab.parquet"], prepare=options).texts == [short]
    assert read_topic_data(str(tmp_path / "lab.parquet"), prepare=options)["text"].tolist() == [short]
    assert read_labelled(tmp_path / "lab.parquet", options)["text"].tolist() == [short]
