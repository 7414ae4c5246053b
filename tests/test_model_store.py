"""One model store for tagger, sentiment and topics: versions, manifests, promoted pointer, gate, no pickle."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.errors import FeedbackError
from pipeline.model_store import (
    MANIFEST,
    FolderStore,
    WarehouseStore,
    check_files,
    new_manifest,
    open_store,
    read_manifest,
    version_id,
    write_manifest,
)
from pipeline.warehouse import open_warehouse
from tests.conftest import write_config

DATA_SUFFIXES = {".json", ".npy", ".npz", ".txt", ".yaml", ".md", ".safetensors", ".model"}


def _version(folder: Path, family: str = "sentiment", tag: str = "a", **metrics: float) -> Path:
    version = version_id(family, "test", {"tag": tag})
    out = folder / version
    out.mkdir(parents=True)
    np.save(out / "weights.npy", np.arange(4, dtype=np.float32))
    write_manifest(out, new_manifest(family, f"{family}.test.v1", version, "labels", metrics=metrics))
    return out


@pytest.fixture(params=["folder", "duckdb", "postgres"])
def store(request, tmp_path):
    if request.param == "folder":
        yield FolderStore(tmp_path / "store" / "sentiment", "sentiment")
    elif request.param == "duckdb":
        with open_warehouse(str(tmp_path / "wh.duckdb")) as wh:
            yield WarehouseStore(wh, "sentiment", cache_dir=tmp_path / "cache")
    else:
        import sqlalchemy as sa

        from tests.conftest import pg_schema

        url = request.getfixturevalue("pg_url")
        with pg_schema(url, "ms") as schema:
            admin = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            admin.dispose()
            scoped = url + ("&" if "?" in url else "?") + f"options=-csearch_path%3D{schema}"
            with open_warehouse(scoped) as wh:
                yield WarehouseStore(wh, "sentiment", cache_dir=tmp_path / "cache")


def test_every_store_keeps_versions_gates_promotions_and_keeps_history(store, tmp_path):
    good = _version(tmp_path / "src", tag="good", macro_f1=0.80)
    worse = _version(tmp_path / "src", tag="worse", macro_f1=0.70)
    assert store.promoted_path() is None and store.versions() == []

    first = store.promote(good, {"macro_f1": 0.80}, None)
    assert first.promoted and first.reason == "no version promoted yet"
    assert store.promoted_version() == read_manifest(good)["version"]
    assert np.load(store.promoted_path() / "weights.npy", allow_pickle=False).tolist() == [0, 1, 2, 3]

    refused = store.promote(worse, {"macro_f1": 0.70}, {"macro_f1": 0.80})
    assert not refused.promoted and "10.0 points worse" in refused.reason
    assert store.promoted_version() == read_manifest(good)["version"]
    assert [m["version"] for m in store.versions()] == [read_manifest(good)["version"]]  # not stored

    within = store.promote(worse, {"macro_f1": 0.70}, {"macro_f1": 0.80}, max_drop=12.0)
    assert within.promoted and not within.forced
    pointer = store.pointer()
    assert pointer["version"] == read_manifest(worse)["version"]
    assert pointer["previous_version"] == read_manifest(good)["version"]
    assert pointer["history"][-1]["version"] == read_manifest(good)["version"]
    listed = store.versions()
    assert len(listed) == 2 and [m["promoted"] for m in listed].count(True) == 1

    # Erasure may rewrite a file of a stored version; everything else is immutable.
    version = read_manifest(worse)["version"]
    store.replace_file(version, "weights.npy", _npy(np.zeros(4, dtype=np.float32)))
    assert np.load(store.path(version) / "weights.npy", allow_pickle=False).tolist() == [0, 0, 0, 0]


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_a_version_with_a_pickle_or_another_family_is_refused(tmp_path):
    folder = _version(tmp_path, tag="p")
    store = FolderStore(tmp_path / "store", "sentiment")
    (folder / "model.joblib").write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(FeedbackError, match="never hold code or pickles"):
        store.add(folder)
    tagger = _version(tmp_path / "t", family="tagger", tag="t")
    with pytest.raises(FeedbackError, match="holds a tagger model, not a sentiment model"):
        store.add(tagger)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeedbackError, match="no manifest.json"):
        store.add(tmp_path / "empty")


def test_version_ids_are_the_same_format_for_every_family():
    ids = [version_id(f, "kind", {"x": 1}) for f in ("tagger", "sentiment", "topics")]
    for family, vid in zip(("tagger", "sentiment", "topics"), ids, strict=True):
        head, kind, digest = vid.split("-")
        assert head == family and kind == "kind" and len(digest) == 12 and int(digest, 16) >= 0
    assert version_id("tagger", "kind", {"x": 1}) == ids[0]  # same identity, same id
    assert version_id("tagger", "kind", {"x": 2}) != ids[0]


def test_store_placement_is_configuration(tmp_path):
    cfg = write_config(tmp_path, str(tmp_path / "wh.duckdb"))
    config = load_config(cfg)
    assert isinstance(open_store(config, "tagger"), FolderStore)
    assert open_store(config, "sentiment").root == tmp_path / "model_store" / "sentiment"
    with pytest.raises(Exception, match="warehouse"):
        open_store(config, "topics")  # topics live in the warehouse by default
    moved = load_config(write_config(tmp_path, str(tmp_path / "wh.duckdb"), model_store={
        "path": str(tmp_path / "ms"), "in_warehouse": ["tagger", "sentiment", "topics"]}))  # fmt: skip
    with open_warehouse(moved.warehouse) as wh:
        assert all(isinstance(open_store(moved, f, wh), WarehouseStore) for f in ("tagger", "sentiment"))


def _artefacts(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def _open_without_code(name: str, content: bytes) -> None:
    """Open one stored file the way loading does: JSON parses, arrays load with allow_pickle=False."""
    suffix = Path(name).suffix
    assert suffix in DATA_SUFFIXES, name
    if suffix == ".npy":
        np.load(io.BytesIO(content), allow_pickle=False)
    elif suffix == ".json":
        json.loads(content.decode("utf-8"))


def test_every_artefact_the_project_writes_opens_without_pickle(tmp_path):
    """A real run, a trained tagger, trained sentiment (labels and scores) and the zero-shot models, each
    saved and stored: every file in every folder and every row of the store's table is plain data."""
    from pipeline.demo.sample import generate_survey, write_export
    from pipeline.embed import build_embedder
    from pipeline.ingest.load import load_export
    from pipeline.runner import run_enrichment
    from pipeline.sentiment import PrototypeSentiment, load_sentiment
    from pipeline.sentiment.lifecycle import embedder_spec, train_on_frame
    from pipeline.sentiment.retrain import learn_from_scores
    from pipeline.tagging.data import LabelledData
    from pipeline.tagging.lifecycle import encoder_spec, load_tagger, save_version, train_tagger
    from pipeline.tagging.taxonomy import load_taxonomy

    cfg = write_config(
        tmp_path,
        str(tmp_path / "wh.duckdb"),
        sentiment={
            "name": "sentiment.prototype.v1",
            "options": {"learn_from_scores": {"min_rows": 50, "members": ["embedding"], "cv_folds": 2}},
        },
    )
    config = load_config(cfg)
    survey = generate_survey(n=240, seed=4, with_truth=True)
    truth = survey[["response_id", "true_tags"]]
    export = survey.drop(columns=[c for c in survey.columns if c.startswith("true_")])
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(export, tmp_path / "s.parquet"), wh, config)
    first = run_enrichment(config)
    assert first.versions["sentiment_model_version"].startswith("sentiment-prototype-")
    hashing = build_embedder("hashing")
    folders = []

    # Sentiment from the stored scores: the weekly flow's function trains, gates and promotes a version.
    with open_warehouse(config.warehouse) as wh:
        result = learn_from_scores(wh, config, hashing)
    assert result["status"] == "promoted", result
    assert result["candidate_report"]["spearman_score"] > result["current_report"]["spearman_score"]
    second_store = open_store(config, "sentiment")
    assert second_store.promoted_version() == result["version"]
    # The nightly run uses the promoted version and records it; it never trains itself.
    more = generate_survey(n=40, seed=9).assign(response_id=lambda d: "N" + d["response_id"].astype(str))
    with open_warehouse(config.warehouse) as wh:
        load_export(write_export(more, tmp_path / "more.parquet"), wh, config)
    second = run_enrichment(config)
    assert second.rows_enriched > 0 and second.versions["sentiment_model_version"] == result["version"]
    folders.append(second_store.promoted_path())

    # A trained tagger and the zero-shot one, as version folders.
    taxonomy = load_taxonomy(config.tagger.taxonomy)
    labelled = LabelledData(
        pd.DataFrame(
            {
                "id": survey["response_id"].astype(str),
                "text": survey["comment"].fillna("").astype(str),
                "tags": truth["true_tags"].map(list),
                "lang": survey["true_language"],
                "group": None,
            }
        )
    )
    model, info = train_tagger(labelled, hashing, taxonomy=taxonomy, params={"cv": 2})
    folders.append(save_version(model, tmp_path / "tagger_v", info, encoder_spec("hashing", {}, hashing)))
    zero, zinfo = train_tagger(labelled.subset([]), hashing, taxonomy=taxonomy)
    zfolder = save_version(zero, tmp_path / "zero_v", zinfo, encoder_spec("hashing", {}, hashing))
    folders.append(zfolder)
    assert load_tagger(zfolder, hashing).version == zero.version
    # Trained sentiment on labels, with the stack member (tagger format inside) and the aspect head.
    frame = pd.DataFrame(
        {
            "id": survey["response_id"].astype(str),
            "text": survey["comment"].fillna("").astype(str),
            "sentiment": survey["true_sentiment"].where(survey["true_sentiment"] != "mixed"),
        }
    )
    sent = train_on_frame(
        frame, hashing, embedder_spec("hashing"), members=("embedding", "fused", "stack"), cv_folds=2
    )
    sfolder = sent.save(tmp_path / "sent_v")
    folders.append(sfolder)
    assert load_sentiment(sfolder).version == sent.version
    folders.append(PrototypeSentiment().fit(hashing).save(tmp_path / "proto_v"))

    for folder in folders:
        check_files(folder)
        manifest = read_manifest(folder)
        assert manifest["version"].startswith(manifest["family"] + "-")
        for path in _artefacts(folder):
            _open_without_code(path.name, path.read_bytes())
    # The topic models live in the warehouse's store: every row is plain data too.
    with open_warehouse(config.warehouse) as wh:
        rows = wh.read("model_files")
        topics = open_store(config, "topics", wh)
        assert topics.promoted_version() == second.versions["topic_model_version"]
    assert set(rows["family"]) == {"topics"} and (rows["name"] == MANIFEST).any()
    for rec in rows.to_dict("records"):
        _open_without_code(rec["name"], bytes(rec["content"]))
