"""Sentiment: supervision sources behind one interface, train/evaluate/predict, the CLI, the run wiring.

Everything here runs on the project's own synthetic survey (``pipeline.demo.sample``) and a tiny word-hashing
embedder, so it is fast and needs no encoder; the transformers test builds a tiny model in tmp_path.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import main
from pipeline.demo.sample import TAG_POLARITY, generate_survey
from pipeline.errors import ConfigError, NotFittedError, SchemaError
from pipeline.sentiment import (
    EmbeddingSentiment,
    PrototypeSentiment,
    label_from_score,
    labels_from_scores,
    load_sentiment,
    proba_to_scores,
    sentiment_for_run,
)
from pipeline.sentiment.lifecycle import embedder_spec, evaluate_frame, predict_frame, train_on_frame


class WordHashEmbedder:
    """Bag of hashed words, L2-normalised: a fast, deterministic stand-in for a sentence encoder."""

    def __init__(self, dim: int = 128) -> None:
        self.dim = dim
        self.model_id = f"wordhash-{dim}"

    def embed(self, texts: Sequence[str], progress: object = None) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in str(text).lower().split():
                out[i, zlib.crc32(word.strip(".,!?").encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        norms[norms == 0] = 1.0
        return out / norms


@pytest.fixture(scope="module")
def survey() -> pd.DataFrame:
    """The synthetic survey as a labelled file: text, lang, sentiment, score, survey_type, tags."""
    g = generate_survey(n=900, seed=11, with_truth=True)
    g = g[g["true_sentiment"].notna() & g["comment"].notna() & g["survey_type"].isin(["nps", "csat", "ces"])]
    g = g.drop_duplicates("response_id")
    return pd.DataFrame(
        {
            "id": g["response_id"].astype(str),
            "text": g["comment"].astype(str),
            "lang": g["true_language"],
            "sentiment": g["true_sentiment"],
            "score": g["score"],
            "survey_type": g["survey_type"],
            "tags": g["true_tags"],
            "aspect_sentiments": [[f"{t}={TAG_POLARITY[t]}" for t in tags] for tags in g["true_tags"]],
        }
    ).reset_index(drop=True)


@pytest.fixture(scope="module")
def embedder() -> WordHashEmbedder:
    return WordHashEmbedder()


@pytest.fixture(scope="module")
def trained(survey, embedder) -> EmbeddingSentiment:
    train = survey.iloc[:600].reset_index(drop=True)
    return train_on_frame(
        train, embedder, embedder_spec("hashing"), members=("embedding", "text"), cv_folds=2
    )


def test_scores_carry_the_models_decisions_into_the_neutral_band():
    proba = np.array([[0.6, 0.3, 0.1], [0.2, 0.5, 0.3], [0.1, 0.2, 0.7], [0.45, 0.1, 0.45]])
    classes = ["negative", "neutral", "positive"]
    scores = proba_to_scores(proba, classes, None, 0.25)
    assert list(label_from_score(scores, 0.25)) == ["negative", "neutral", "positive", "negative"]
    assert np.all(np.abs(scores) <= 1)
    # A bias that favours neutral moves the decision, and the label follows.
    biased = proba_to_scores(proba, classes, np.array([0.0, 1.0, 0.0]), 0.25)
    assert label_from_score(biased, 0.25)[0] == "neutral"
    # Within a class the order of P(pos) - P(neg) is kept.
    assert scores[2] > scores[1] > scores[0]


def test_scores_become_buckets_by_scale_not_copied_values():
    got = labels_from_scores(
        [0, 6, 7, 9, 10, 1, 3, 5, 2, 4, 6, np.nan], ["nps"] * 5 + ["1-5"] * 3 + ["ces"] * 4
    )
    assert list(got) == [
        "negative", "negative", "neutral", "positive", "positive",
        "negative", "neutral", "positive",
        "negative", "neutral", "positive", None,
    ]  # fmt: skip
    with pytest.raises(SchemaError, match="0-10"):
        labels_from_scores([3], ["stars"])


def test_unfitted_and_misused_models_raise_clear_errors(trained, embedder):
    with pytest.raises(NotFittedError, match="fit"):
        EmbeddingSentiment().score(np.zeros((1, 4)))
    with pytest.raises(SchemaError, match="texts"):
        trained.score(embedder.embed(["great"]))  # the TF-IDF member needs the texts
    with pytest.raises(SchemaError, match="unknown sentiment label"):
        EmbeddingSentiment().fit(np.zeros((2, 3)), ["good", "bad"], embedder_id="x")


def test_train_save_load_evaluate_predict_round_trip(trained, survey, embedder, tmp_path):
    test = survey.iloc[600:].reset_index(drop=True)
    folder = trained.save(tmp_path / "model")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["family"] == "sentiment" and manifest["version"] == trained.version
    assert manifest["mode"] == "labels" and manifest["encoder"]["model_id"] == embedder.model_id
    assert len(manifest["training_data"]["sha256"]) == 64 and manifest["metrics"]["n_train"] > 400
    assert trained.version.startswith("sentiment-labels-")
    assert not [p for p in folder.rglob("*") if p.suffix in (".joblib", ".pkl", ".pickle")]
    loaded = load_sentiment(folder)
    assert loaded.version == trained.version
    emb = embedder.embed(test["text"].tolist())
    np.testing.assert_allclose(
        loaded.score(emb, test["text"].tolist()), trained.score(emb, test["text"].tolist())
    )

    result = evaluate_frame(loaded, test, embedder)
    assert result["macro_f1"] >= 0.8 and result["accuracy"] >= 0.85
    assert result["spearman_score"] >= 0.5  # learned from labels, it still orders the customers' scores
    assert {"en", "pt", "es", "fr", "nl"} <= set(result["per_lang"])
    assert result["sentiment_source"] == "labels"

    pred = predict_frame(loaded, test, embedder)
    assert list(pred.columns) == ["id", "sentiment_label", "sentiment_score", "tag_sentiments"]
    assert pred["sentiment_score"].between(-1, 1).all()
    for tags, pairs in zip(test["tags"], pred["tag_sentiments"], strict=True):
        assert [p.split("=")[0] for p in pairs] == list(tags)
        assert all(p.split("=")[1] in ("negative", "neutral", "positive") for p in pairs)


def test_predict_calls_an_answer_whose_sentences_disagree_mixed(survey, tmp_path):
    """As in the nightly run: a praise and a complaint in one answer make it "mixed", in the library and
    through `feedback sentiment predict`."""
    from pipeline.embed import build_embedder

    hashing = build_embedder("hashing")  # registered, so the CLI rebuilds it from the manifest
    model = train_on_frame(
        survey.iloc[:600].reset_index(drop=True),
        hashing,
        embedder_spec("hashing"),
        members=("embedding", "text"),
        cv_folds=2,
    )
    praise, complaint = (
        "Really quick shipping and the courier was on time.",
        "The parcel sat at the depot for 13 days.",
    )
    alone = model.score(hashing.embed([praise, complaint]), [praise, complaint])
    assert alone[0] >= model.mixed_band and alone[1] <= -model.mixed_band  # clearly opposite
    df = pd.DataFrame(
        {"id": ["p", "c", "pc"], "text": [praise, complaint, f"{praise} {complaint}"], "lang": "en"}
    )
    pred = predict_frame(model, df, hashing)
    assert pred["sentiment_label"].tolist() == ["positive", "negative", "mixed"]
    own = predict_frame(model, df, hashing, mixed=False)
    np.testing.assert_allclose(pred["sentiment_score"], own["sentiment_score"])  # the score stays the text's
    assert own["sentiment_label"].iloc[2] != "mixed"

    folder = model.save(tmp_path / "model")
    data, out = tmp_path / "in.csv", tmp_path / "out.csv"
    df.drop(columns=["lang"]).to_csv(data, index=False)  # no lang column: split with the generic rules
    assert main(["sentiment", "predict", "--model", str(folder), "--data", str(data), "--out", str(out)]) == 0
    assert pd.read_csv(out)["sentiment_label"].tolist() == ["positive", "negative", "mixed"]


def test_aspect_head_reads_each_themes_own_polarity(survey, embedder):
    """In mixed answers (a praise and a complaint) the aspect head beats labelling every tag alike."""
    train, test = survey.iloc[:600].reset_index(drop=True), survey.iloc[600:].reset_index(drop=True)
    model = train_on_frame(
        train, embedder, embedder_spec("hashing"), members=("embedding", "text"), cv_folds=2
    )
    assert model.aspect_ is not None
    mixed = test[test["sentiment"] == "mixed"].reset_index(drop=True)
    assert len(mixed) >= 20
    result = evaluate_frame(model, mixed, embedder)
    no_aspect = EmbeddingSentiment(members=("embedding", "text"), cv_folds=2).fit(
        embedder.embed(train["text"].tolist()), train["sentiment"].tolist(), train["text"].tolist(),
        embedder_id=embedder.model_id,
    )  # fmt: skip
    baseline = evaluate_frame(no_aspect, mixed, embedder)
    assert result["aspect_accuracy"] >= 0.75
    assert result["aspect_accuracy"] > baseline["aspect_accuracy"] + 0.15


def test_stack_member_round_trips_through_the_model_folder(survey, embedder, tmp_path):
    """The tagger's stack as an ensemble member: in both heads, saved in the tagger's own file format."""
    train, test = survey.iloc[:600].reset_index(drop=True), survey.iloc[600:].reset_index(drop=True)
    model = train_on_frame(
        train, embedder, embedder_spec("hashing"), members=("embedding", "stack"), cv_folds=2
    )
    assert model.needs_texts and "stack" in model.head_.models_ and "stack" in model.aspect_.models_
    folder = model.save(tmp_path / "model")
    assert (folder / "stack" / "model.json").exists() and (folder / "aspect_stack" / "model.json").exists()
    assert model.head_.models_["stack"] is not None  # saving leaves the fitted model whole
    loaded = load_sentiment(folder)
    texts = test["text"].tolist()
    emb = embedder.embed(texts)
    np.testing.assert_allclose(loaded.score(emb, texts), model.score(emb, texts), atol=1e-6)
    tags = test["tags"].tolist()
    np.testing.assert_allclose(
        np.concatenate(loaded.score_tags(emb, texts, tags)),
        np.concatenate(model.score_tags(emb, texts, tags)),
        atol=1e-6,
    )
    result = evaluate_frame(loaded, test, embedder)
    assert result["macro_f1"] >= 0.8 and result["aspect_accuracy"] >= 0.75
    with pytest.raises(SchemaError, match="texts"):
        loaded.score(emb)

    # Without texts the stack reads the embeddings alone (ridge + kNN), and so does the model.
    lean = EmbeddingSentiment(members=("embedding", "stack"), cv_folds=2).fit(
        embedder.embed(train["text"].tolist()), train["sentiment"].tolist(), embedder_id=embedder.model_id
    )
    assert not lean.needs_texts and lean.score(emb).shape == (len(test),)
    # From scores, with the stack alone.
    scored = train[train["score"].notna()]
    from_scores = EmbeddingSentiment(members=("stack",), cv_folds=2).fit_scores(
        embedder.embed(scored["text"].tolist()), scored["score"].astype(float).tolist(),
        scored["survey_type"].tolist(), scored["text"].tolist(), embedder_id=embedder.model_id,
    )  # fmt: skip
    assert from_scores.source == "scores" and evaluate_frame(from_scores, test, embedder)["macro_f1"] >= 0.6


def test_learning_from_scores_calibrates_rather_than_copies(survey, embedder):
    train, test = survey.iloc[:600].reset_index(drop=True), survey.iloc[600:].reset_index(drop=True)
    model = train_on_frame(
        train, embedder, embedder_spec("hashing"), from_score=True, members=("embedding", "text"), cv_folds=2
    )
    assert model.source == "scores" and "-scores-" in model.version
    assert model.manifest()["metrics"]["n_pruned"] > 0  # answers whose text contradicts their score
    result = evaluate_frame(model, test, embedder)
    assert result["spearman_score"] >= 0.5
    assert result["macro_f1"] >= 0.6  # judged against the true tone, which it never saw
    # Promoters who complain: the text decides, not the score.
    complaints = test[(test["score"] >= 9) & (test["sentiment"] == "negative")]
    if len(complaints):
        texts = complaints["text"].tolist()
        labels, _ = model.predict(embedder.embed(texts), texts)
        assert (labels == "negative").mean() >= 0.5


def test_run_wiring_loads_model_dirs_and_the_promoted_version_and_never_trains(trained, embedder, tmp_path):
    from pipeline.model_store import FolderStore

    folder = trained.save(tmp_path / "m")
    model = sentiment_for_run("sentiment.prototype.v1", {"model_dir": str(folder)}, embedder)
    assert model.source == "labels" and model.version == trained.version
    with pytest.raises(ConfigError, match="retrain"):
        sentiment_for_run("sentiment.prototype.v1", {"model_dir": str(folder)}, WordHashEmbedder(dim=64))

    # A nightly run never trains: learn_from_scores is the weekly flow's (see test_model_store).
    zero = sentiment_for_run("sentiment.prototype.v1", {"learn_from_scores": {"min_rows": 1}}, embedder)
    assert isinstance(zero, PrototypeSentiment) and zero.source == "zero_shot"
    # The store's promoted version, as a registry folder or as the run's promoted path.
    store = FolderStore(tmp_path / "registry", "sentiment")
    store.promote(folder, {"macro_f1": 0.9}, None)
    assert (
        sentiment_for_run("sentiment.prototype.v1", {"model_dir": str(store.root)}, embedder).version
        == trained.version
    )
    promoted = sentiment_for_run("sentiment.prototype.v1", {}, embedder, promoted=store.promoted_path())
    assert promoted.version == trained.version
    # A promoted version of another encoder is not used (the zero-shot default runs instead).
    other = sentiment_for_run(
        "sentiment.prototype.v1", {}, WordHashEmbedder(dim=64), promoted=store.promoted_path()
    )
    assert isinstance(other, PrototypeSentiment)
    with pytest.raises(ConfigError, match="model_dir"):
        sentiment_for_run("sentiment.embedding_lr.v1", {}, embedder)


def test_cli_train_evaluate_predict(survey, tmp_path):
    data = tmp_path / "train.parquet"
    survey.iloc[:400].drop(columns=["aspect_sentiments"]).to_parquet(data)
    test = tmp_path / "test.csv"
    held = survey.iloc[600:700].drop(columns=["aspect_sentiments"]).copy()
    held["tags"] = held["tags"].map("|".join)  # CSV: tags as a "|"-separated string
    held.to_csv(test, index=False)
    model = tmp_path / "model"
    common = ["--embedder", "hashing"]
    args = [
        "sentiment",
        "train",
        "--data",
        str(data),
        "--out",
        str(model),
        "--members",
        "embedding",
        "--cv-folds",
        "2",
    ]
    assert main(args + common) == 0
    assert (model / "manifest.json").exists() and (model / "model.json").exists()
    assert not (model / "model.joblib").exists()  # no pickle: loading a model runs no code
    assert main(["sentiment", "train", "--data", str(data), "--out", str(tmp_path / "fs"), "--from-score",
                 "--members", "embedding", "--cv-folds", "2", *common]) == 0  # fmt: skip
    assert json.loads((tmp_path / "fs" / "manifest.json").read_text())["mode"] == "scores"

    out_json = tmp_path / "eval.json"
    assert (
        main(["sentiment", "evaluate", "--model", str(model), "--data", str(test), "--json", str(out_json)])
        == 0
    )
    metrics = json.loads(out_json.read_text())
    assert {"accuracy", "macro_f1", "per_lang", "spearman_score", "sentiment_source"} <= set(metrics)
    assert metrics["macro_f1"] > 0.5

    pred_file = tmp_path / "pred.csv"
    assert (
        main(
            [
                "sentiment",
                "predict",
                "--model",
                "default",
                "--data",
                str(test),
                "--out",
                str(pred_file),
                *common,
            ]
        )
        == 0
    )
    pred = pd.read_csv(pred_file)
    assert list(pred.columns) == ["id", "sentiment_label", "sentiment_score", "tag_sentiments"]
    assert len(pred) == len(held) and pred["sentiment_score"].between(-1, 1).all()
    first = held["tags"].iloc[0].split("|")
    assert [p.split("=")[0] for p in str(pred["tag_sentiments"].iloc[0]).split("|")] == first

    assert main(["sentiment", "evaluate", "--model", str(tmp_path / "nowhere"), "--data", str(test),
                 "--json", str(out_json)]) == 2  # fmt: skip


def _tiny_classifier(path, id2label):
    """A tiny BERT sequence classifier with a tiny vocabulary, saved with save_pretrained."""
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    import torch

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "great", "awful", "service", "ok", "love", "late"]
    path.mkdir(parents=True, exist_ok=True)
    (path / "vocab.txt").write_text("\n".join(words) + "\n")
    tokenizer = transformers.BertTokenizerFast(vocab_file=str(path / "vocab.txt"))
    config = transformers.BertConfig(
        vocab_size=len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=64, num_labels=len(id2label),
        id2label=id2label, label2id={v: k for k, v in id2label.items()},
    )  # fmt: skip
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_transformers_backend_offline_with_a_tiny_model(tmp_path):
    from pipeline.sentiment.transformers_backend import TransformersSentiment, polarity_of_label

    assert polarity_of_label("4 stars") == "positive" and polarity_of_label("LABEL_0") is None
    folder = _tiny_classifier(tmp_path / "tiny", {0: "NEGATIVE", 1: "NEUTRAL", 2: "POSITIVE"})
    texts = ["great service", "awful late", "ok", "love love great"]
    model = TransformersSentiment(str(folder)).fit()
    labels, scores = model.predict(None, texts)
    assert model.source == "pretrained" and model.needs_texts
    assert len(scores) == 4 and np.all(np.abs(scores) <= 1)
    assert set(labels) <= {"negative", "neutral", "positive"}
    # The score follows the model's own probabilities.
    proba = model.proba(texts)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-5)
    assert np.argmax(proba[:, 2] - proba[:, 0]) == np.argmax(scores)

    saved = model.save(tmp_path / "saved")
    again = load_sentiment(saved)
    np.testing.assert_allclose(again.score(None, texts), scores, atol=1e-6)

    generic = _tiny_classifier(tmp_path / "generic", {0: "LABEL_0", 1: "LABEL_1"})
    with pytest.raises(ConfigError, match="label_map"):
        TransformersSentiment(str(generic)).fit()
    mapped = TransformersSentiment(
        str(generic), label_map={"LABEL_0": "negative", "LABEL_1": "positive"}
    ).fit()
    assert set(mapped.predict(None, texts)[0]) <= {"negative", "positive"}

    data = tmp_path / "in.parquet"
    pd.DataFrame({"id": ["a", "b", "c", "d"], "text": texts, "tags": [["x"], [], ["x", "y"], []]}).to_parquet(
        data
    )
    out = tmp_path / "pred.parquet"
    assert main(["sentiment", "predict", "--model", str(folder), "--data", str(data), "--out", str(out)]) == 0
    pred = pd.read_parquet(out)
    assert list(pred["tag_sentiments"].map(len)) == [1, 0, 2, 0]
    np.testing.assert_allclose(pred["sentiment_score"], scores, atol=1e-6)


@pytest.mark.slow
def test_nightly_run_uses_a_trained_model_and_records_its_source(survey, tmp_path):
    from pipeline.config import load_config
    from pipeline.demo.sample import write_export
    from pipeline.embed import build_embedder
    from pipeline.ingest.load import load_export
    from pipeline.runner import run_enrichment
    from pipeline.warehouse import open_warehouse
    from tests.test_pipeline_e2e import make_config

    hashing = build_embedder("hashing")
    model = train_on_frame(
        survey.iloc[:300].reset_index(drop=True),
        hashing,
        embedder_spec("hashing"),
        members=("embedding", "text"),
        cv_folds=2,
    ).save(tmp_path / "model")
    config = load_config(
        make_config(
            tmp_path,
            embedder={"name": "hashing"},
            sentiment={"name": "sentiment.embedding_lr.v1", "options": {"model_dir": str(model)}},
            topics={"name": "topics.none.v1"},
        )
    )
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(generate_survey(n=150, seed=5), tmp_path / "s.parquet"), wh, config)
    summary = run_enrichment(config)
    assert summary.versions["sentiment_source"] == "labels"
    with open_warehouse(config.warehouse) as wh:
        runs, enr = wh.read("pipeline_runs"), wh.read("feedback_enriched")
        sents, tags = wh.read("feedback_sentences"), wh.read("feedback_tags")
    assert runs["sentiment_source"].tolist() == ["labels"]
    answered = enr[~enr["is_non_answer"].astype(bool)]
    assert set(answered["sentiment_source"]) == {"labels"}
    assert set(answered["sentiment_label"]) <= {"negative", "neutral", "positive", "mixed"}
    assert answered["sentiment_score"].between(-1, 1).all() and len(sents) and len(tags)
    assert set(sents["sentiment_label"]) <= {"negative", "neutral", "positive"}
