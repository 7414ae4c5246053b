"""Themes that stay put: determinism, language centering, outliers, stable ids, alerts, CLI, refit flow."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from pipeline.analysis.alerts import AlertRules, compute_alerts
from pipeline.schema import ALERT_COLUMNS
from pipeline.topic_registry import first_match, match_topics
from pipeline.topics import BERTopicModel, StableTopicModel, build_topics

DIM = 48


def _themes(k: int, seed: int = 0, spread: float = 3.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(k, DIM)) * spread


def _docs(
    centers: np.ndarray, n_per: int, seed: int, noise: float = 0.35, offset: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = np.concatenate([c + rng.normal(size=(n_per, DIM)) * noise for c in centers])
    if offset is not None:
        x = x + offset
    truth = np.repeat(np.arange(len(centers)), n_per)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32), truth


def _texts(truth: np.ndarray, tag: str = "t") -> list[str]:
    return [f"{tag}{t} answer {i}" for i, t in enumerate(truth)]


def _purity(assigned: np.ndarray, truth: np.ndarray) -> float:
    """Share of texts in their true theme's most common topic."""
    hits = 0
    for k in np.unique(truth):
        _, counts = np.unique(assigned[truth == k], return_counts=True)
        hits += counts.max()
    return hits / len(truth)


def _model(**kw: object) -> StableTopicModel:
    return StableTopicModel(languages=["en"], keywords=False, min_topic_size=10, **kw)


def test_fit_is_independent_of_seed_and_order_and_transform_agrees_with_fit():
    emb, truth = _docs(_themes(5), 60, seed=1)
    texts = _texts(truth)
    first = _model(seed=1).fit(texts, emb)
    order = np.random.default_rng(7).permutation(len(texts))
    second = _model(seed=99).fit([texts[i] for i in order], emb[order])
    assert adjusted_rand_score(first.labels_, second.transform(emb)) == 1.0
    np.testing.assert_array_equal(first.transform(emb), first.labels_)
    # over-split starts (k=8 for 5 themes) are merged back: one topic per theme
    assert len(first.topic_ids_) == 5 and _purity(first.labels_, truth) > 0.97
    assert adjusted_rand_score(truth, first.labels_) > 0.95


def test_language_centering_puts_one_theme_in_two_languages_into_one_topic():
    themes = _themes(3, seed=2, spread=1.0)
    rng = np.random.default_rng(3)
    offsets = {"pt": rng.normal(size=DIM) * 2.5, "nl": rng.normal(size=DIM) * 2.5}
    parts = [_docs(themes, 50, seed=10 + i, offset=off) for i, off in enumerate(offsets.values())]
    emb = np.concatenate([p[0] for p in parts])
    truth = np.concatenate([p[1] for p in parts])
    langs = ["pt"] * len(parts[0][1]) + ["nl"] * len(parts[1][1])
    texts = _texts(truth)
    # Without centering the language direction dominates: topics split by language.
    plain = _model(center_languages=False).fit(texts, emb, languages=langs)
    assert normalized_mutual_info_score(langs, plain.labels_) > 0.5
    centred = _model().fit(texts, emb, languages=langs)
    assert normalized_mutual_info_score(langs, centred.labels_) < 0.05
    assert _purity(centred.labels_, truth) > 0.95 and len(centred.topic_ids_) == 3
    # assignment without languages infers them from the stored language means
    np.testing.assert_array_equal(centred.transform(emb), centred.labels_)


def test_outliers_floor_and_no_junk_topics():
    emb, truth = _docs(_themes(4, seed=4), 80, seed=5)
    rng = np.random.default_rng(6)
    junk = rng.normal(size=(6, DIM))  # six scattered texts: not a topic of their own
    x = np.concatenate([emb, (junk / np.linalg.norm(junk, axis=1, keepdims=True)).astype(np.float32)])
    model = _model(assign_threshold=0.3).fit(_texts(np.r_[truth, [9] * 6]), x)
    assert min(model.sizes_.values()) >= 10  # no junk topic
    assert (model.labels_[: len(truth)] == -1).mean() <= 0.02  # few outliers among real themes
    assert (model.labels_[len(truth) :] == -1).sum() >= 5  # scattered texts are outliers
    assert (model.transform(x[len(truth) :]) == model.labels_[len(truth) :]).all()
    loose = _model(assign_threshold=-1.0).fit(_texts(np.r_[truth, [9] * 6]), x)
    assert (loose.labels_ >= 0).all()  # without a floor every text is assigned


def test_version_roundtrip_keeps_assignment_language_means_and_ids(tmp_path):
    from pipeline.model_store import check_files, read_manifest

    emb, truth = _docs(_themes(3, seed=8), 40, seed=9)
    langs = ["en", "pt"] * (len(truth) // 2)
    model = _model().fit(_texts(truth), emb, languages=langs)
    fit_labels = model.labels_.copy()
    model.relabel({int(t): int(t) + 100 for t in model.topic_ids_})
    model.suggest_tags([["billing"] if t == 0 else [] for t in truth])
    folder = model.save_version(tmp_path / model.version, {"model_id": "usem3-test"}, {"outlier_share": 0.0})
    check_files(folder)  # data files only, no pickle
    assert read_manifest(folder, "topics")["version"] == model.version
    back = BERTopicModel.load(folder)
    assert isinstance(back, StableTopicModel) and back.version == model.version
    # Load-then-transform gives exactly the fit's labels (under the relabelled ids).
    relabelled = np.where(fit_labels == -1, -1, fit_labels + 100)
    np.testing.assert_array_equal(back.transform(emb, languages=langs), relabelled)
    np.testing.assert_array_equal(back.transform(emb, languages=langs), model.transform(emb, languages=langs))
    assert set(back.language_means_) == {"en", "pt"}
    table = back.topic_table()
    assert set(table["topic_id"]) == {100, 101, 102}
    assert table["suggested_tag"].notna().sum() == 1 and table["candidate_new_tag"].notna().sum() == 2
    assert all(len(q) >= 1 for q in table["representative_quotes"])
    assert isinstance(build_topics("topics.stable.v1"), StableTopicModel)


def test_registry_matching_keeps_ids_and_records_a_split_and_a_merge():
    # old stable ids 10 (A), 11 (B), 12 (C), 13 (D); in the new fit B splits, C and D merge, E is new
    old = np.array([10] * 50 + [11] * 60 + [12] * 40 + [13] * 40 + [-1] * 30)
    new = np.array([7] * 50 + [0] * 30 + [1] * 30 + [2] * 80 + [3] * 30)
    match = match_topics(old, new, next_id=14)
    assert match.mapping[7] == 10  # A continues
    assert match.mapping[2] in (12, 13)  # the merge keeps one of the merged ids
    assert {match.mapping[0], match.mapping[1]} & {11}  # one split part keeps B's id...
    split_new = ({match.mapping[0], match.mapping[1]} - {11}).pop()
    assert split_new >= 14  # ...the other gets a never-used id
    assert match.mapping[3] >= 14 and match.next_id == 16
    events = pd.DataFrame(match.events)
    split = events[events["event"] == "split"].iloc[0]
    assert split["topic_id"] == split_new and split["related_ids"] == [11]
    merge = events[events["event"] == "merge"].iloc[0]
    assert set(merge["related_ids"]) == {12, 13}
    retired = events[events["event"] == "retired"]
    assert len(retired) == 1 and retired["topic_id"].iloc[0] in (12, 13)
    assert (events["event"] == "new").sum() == 1
    history = match.history("v2", pd.Timestamp("2026-01-05"))
    assert list(history.columns)[:3] == ["model_version", "event", "topic_id"] and len(history) == len(events)
    assert json.loads(history.loc[history["event"] == "merge", "related_ids"].iloc[0]) == sorted({12, 13})


def test_refits_on_drifting_clusters_keep_ids_split_and_merge():
    themes = _themes(5, seed=11, spread=3.0)
    emb1, truth1 = _docs(themes, 60, seed=12)
    first = _model().fit(_texts(truth1), emb1)
    first.relabel(first_match(list(first.topic_ids_), 0).mapping)
    # next window: themes 0 and 4 unchanged, theme 1 becomes two distinct themes, themes 2 and 3
    # move close together (one theme now), and a theme never seen before appears
    rng = np.random.default_rng(13)
    drift = [
        themes[0],
        themes[1] + rng.normal(size=DIM) * 2.5,
        themes[1] - rng.normal(size=DIM) * 2.5,
        0.6 * themes[2] + 0.4 * themes[3],
        0.4 * themes[2] + 0.6 * themes[3],
        themes[4],
        rng.normal(size=DIM) * 3.0,
    ]
    emb2, truth2 = _docs(np.stack(drift), 60, seed=14)
    # the refit starts from the previous topics (as the nightly runner does) and still finds the changes
    second = _model().fit(_texts(truth2, "u"), emb2, warm_start=first)
    old_ids = [int(t) for t in first.topic_ids_]
    match = match_topics(first.transform(emb2), second.labels_, next_id=5, old_ids=old_ids)
    second.relabel(match.mapping)
    old_of = {k: pd.Series(first.transform(emb1)[truth1 == k]).mode()[0] for k in range(5)}
    new_of = {k: pd.Series(second.labels_[truth2 == k]).mode()[0] for k in range(7)}
    assert new_of[0] == old_of[0] and new_of[5] == old_of[4]  # unchanged themes keep their ids
    assert new_of[1] != new_of[2] and old_of[1] in (new_of[1], new_of[2])  # split: one part keeps B
    assert new_of[3] == new_of[4] and new_of[3] in (old_of[2], old_of[3])  # merge keeps one id
    assert new_of[6] >= 5 and len(set(new_of.values())) == 6  # the new theme: a never-used id
    events = pd.DataFrame(match.events)
    assert {"kept", "split", "merge", "retired"} <= set(events["event"])
    merge = events[events["event"] == "merge"].iloc[0]
    assert set(merge["related_ids"]) == {old_of[2], old_of[3]}


def _enriched(counts: dict[str, list[int]], start: datetime, volume: list[int] | None = None) -> pd.DataFrame:
    """Answers per 7-day period: counts[key][p] answers with that tag/topic in period p."""
    rows = []
    n_periods = len(next(iter(counts.values())))
    for p in range(n_periods):
        day = start + timedelta(days=7 * p + 3)
        for key, per in counts.items():
            for i in range(per[p]):
                rows.append({"key": key, "submitted_at": day, "i": i})
        for i in range((volume or [0] * n_periods)[p]):
            rows.append({"key": "other", "submitted_at": day, "i": i})
    df = pd.DataFrame(rows)
    topic = {"delivery": 1, "billing": 2, "other": 3, "rare": 4, "new": 5, "steady": 6}
    return pd.DataFrame(
        {
            "response_id": [f"r{j}" for j in range(len(df))],
            "submitted_at": df["submitted_at"],
            "topic_id": df["key"].map(topic),
            "topic_label": df["key"],
            "tags": df["key"].map(lambda k: [k]),
            "is_non_answer": False,
            "text_redacted": [f"{k} complaint {i}" for k, i in zip(df["key"], df["i"], strict=True)],
        }
    )


def test_alerts_fire_on_growth_and_new_themes_not_on_small_numbers_or_volume():
    start = datetime(2026, 1, 1)
    enriched = _enriched(
        {
            "delivery": [10, 10, 10, 10, 40],  # grows 4x: alert
            "steady": [20, 20, 20, 20, 20],  # flat: no alert
            "rare": [1, 1, 0, 1, 6],  # 6x but small numbers: no alert
            "new": [0, 0, 0, 0, 12],  # new: alert
        },
        start,
        volume=[100, 100, 100, 100, 100],
    )
    now = start + timedelta(days=35)
    alerts = compute_alerts(enriched, now=now, rules=AlertRules(min_count=10))
    keys = set(zip(alerts["kind"], alerts["key"], alerts["reason"], strict=True))
    assert ("tag", "delivery", "growth") in keys and ("tag", "new", "new") in keys
    assert ("topic", "1", "growth") in keys and ("topic", "5", "new") in keys
    assert not {k for _, k, _ in keys} & {"steady", "rare", "6", "4", "other", "3"}
    row = alerts[(alerts["kind"] == "tag") & (alerts["key"] == "delivery")].iloc[0]
    assert row["count"] == 40 and row["ratio"] > 2 and row["alert_id"] == "tag:delivery:2026-02-05"
    evidence = json.loads(row["evidence"])
    assert [p["count"] for p in evidence["periods"]][-1] == 40 and len(evidence["examples"]) == 3
    # everything doubling together (a busy week) is not an emerging theme
    busy = _enriched({"delivery": [10, 10, 10, 10, 20]}, start, volume=[100, 100, 100, 100, 200])
    assert compute_alerts(busy, now=now, kinds=("tag",)).empty


@pytest.mark.slow
def test_cli_topics_assign_and_evaluate(tmp_path, capsys):
    from pipeline.cli import main

    emb, truth = _docs(_themes(4, seed=20), 40, seed=21)
    names = ["late delivery parcel", "charged twice invoice", "friendly helpful agent", "app crashes login"]
    data = pd.DataFrame(
        {
            "id": [f"x{i}" for i in range(len(truth))],
            "text": [f"{names[t]} {i}" for i, t in enumerate(truth)],
            "lang": ["en", "pt"] * (len(truth) // 2),
            "tags": [[names[t].split()[0]] for t in truth],
        }
    )
    data.to_parquet(tmp_path / "d.parquet")
    np.save(tmp_path / "e.npy", emb)
    args = ["--data", str(tmp_path / "d.parquet"), "--embeddings", str(tmp_path / "e.npy")]
    out = tmp_path / "assigned.csv"
    assert main(["topics", "assign", *args, "--out", str(out), "--seed", "3"]) == 0
    assigned = pd.read_csv(out)
    assert list(assigned.columns) == ["id", "topic_id", "topic_label"] and len(assigned) == len(truth)
    assert _purity(assigned["topic_id"].to_numpy(), truth) > 0.95
    assert assigned["topic_label"].str.contains("delivery|parcel|late").any()
    report = tmp_path / "eval.json"
    assert main(["topics", "evaluate", *args, "--json", str(report)]) == 0
    metrics = json.loads(report.read_text())
    assert {"n_topics", "outlier_share", "stability_ari", "nmi_tags", "nmi_lang", "seconds"} <= set(metrics)
    assert metrics["stability_ari"] == 1.0 and metrics["nmi_tags"] > 0.9 and metrics["outlier_share"] <= 0.1


def _enriched_sample(n: int = 3000, seed: int = 4) -> pd.DataFrame:
    """``feedback_enriched``-like rows from the generated sample: its true tags, a topic per first tag."""
    from pipeline.sample import generate_survey

    df = generate_survey(n=n, seed=seed, with_truth=True).drop_duplicates("response_id")
    first = [t[0] if len(t) else None for t in df["true_tags"]]
    names = sorted({t for t in first if t})
    return pd.DataFrame(
        {
            "response_id": df["response_id"].to_numpy(),
            "submitted_at": df["submitted_at"].to_numpy(),
            "topic_id": [names.index(t) if t else -1 for t in first],
            "topic_label": first,
            "tags": [list(t) for t in df["true_tags"]],
            "is_non_answer": [len(t) == 0 for t in df["true_tags"]],
            "text_redacted": df["comment"].fillna("").astype(str).to_numpy(),
        }
    )


def test_update_alerts_in_the_warehouse_matches_alerts_over_the_whole_frame(tmp_path):
    from pipeline.config import EnrichmentConfig
    from pipeline.runner import update_alerts
    from pipeline.warehouse import open_warehouse

    config = EnrichmentConfig()
    rules = AlertRules(**config.alerts.model_dump(exclude={"enabled"}))
    n_alerts = 0
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        sample = _enriched_sample()
        wh.upsert(config.tables.enriched, sample, key=["response_id"])
        # Theme alerts read the tags table (one row per response and tag), as the pipeline writes it.
        long = sample[["response_id", "tags"]].explode("tags").dropna().rename(columns={"tags": "tag"})
        wh.upsert(config.tables.tags, long, key=["response_id", "tag"])
        stored = wh.read(config.tables.enriched)
        latest = stored["submitted_at"].max()
        # nights across the sample's 90 days (the billing incident, the app release), and the default
        for now in [None, *(latest - timedelta(days=d) for d in range(0, 56, 4))]:
            end = now or latest
            old = compute_alerts(stored, now=now, rules=rules)  # over the whole frame, in pandas
            written = update_alerts(wh, config, now=now)
            new = wh.read(config.tables.alerts)
            new = (
                new[new["period_end"] == pd.Timestamp(end)]
                .sort_values(["kind", "key"])
                .reset_index(drop=True)
            )
            assert written == len(old) == len(new)
            cols = [c for c in old.columns if c != "created_at"]
            pd.testing.assert_frame_equal(
                new[cols], old[cols].sort_values(["kind", "key"]).reset_index(drop=True), check_dtype=False
            )
            n_alerts += len(new)
    assert n_alerts >= 3


def test_a_quiet_night_creates_an_empty_alerts_table_with_the_types_later_alerts_need(tmp_path):
    from pipeline.config import EnrichmentConfig
    from pipeline.runner import update_alerts
    from pipeline.warehouse import open_warehouse

    config = EnrichmentConfig()
    sample = _enriched_sample()
    with open_warehouse(tmp_path / "wh.duckdb") as wh:
        wh.upsert(config.tables.enriched, sample.head(5), key=["response_id"])  # too few for any alert
        assert update_alerts(wh, config) == 0
        assert wh.table_exists(config.tables.alerts)
        assert wh.count(config.tables.alerts) == 0
        types = wh._column_types(config.tables.alerts)
        assert list(types) == ALERT_COLUMNS
        wh.upsert(config.tables.enriched, sample, key=["response_id"])
        latest = wh.max_value(config.tables.enriched, "submitted_at")
        written = max(update_alerts(wh, config, now=latest - timedelta(days=d)) for d in range(0, 56, 4))
        assert written > 0
        assert wh._column_types(config.tables.alerts) == types  # count stays an integer, ratio a number
        stored = wh.read(config.tables.alerts)
        assert pd.api.types.is_integer_dtype(stored["count"])
        assert pd.api.types.is_float_dtype(stored["ratio"])
        assert pd.api.types.is_datetime64_any_dtype(stored["period_end"])


class _CountingEmbedder:
    """Wraps an embedder and counts the texts it is asked to encode."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.encoded = 0

    def embed(self, texts: list[str], **kwargs: object) -> np.ndarray:
        self.encoded += len(texts)
        return self.inner.embed(texts, **kwargs)


@pytest.mark.slow
def test_refit_reassigns_the_stored_rows_of_the_window_from_cached_vectors(tmp_path, monkeypatch):
    from pipeline import runner
    from pipeline.config import load_config
    from pipeline.sample import DEFAULT_END, generate_survey, write_export
    from pipeline.warehouse import open_warehouse
    from tests.test_pipeline_e2e import make_config

    config = load_config(make_config(tmp_path))
    first = generate_survey(n=300, seed=21)
    # a month later, other answers (new ids): the model is not due, so they get the first fit's topics
    later = generate_survey(n=300, seed=22, days=30, end=DEFAULT_END + timedelta(days=30))
    later["response_id"] = "L" + later["response_id"].astype(str)
    for name, export in (("a", first), ("b", later)):
        with open_warehouse(config.warehouse) as wh:
            runner.load_export(write_export(export, tmp_path / f"{name}.parquet"), wh, config)
        runner.run_enrichment(config)
    with open_warehouse(config.warehouse) as wh:
        before = wh.read("feedback_enriched").set_index("response_id").sort_index()
        n_source, n_quarantine = wh.count("survey_responses"), wh.count("quarantine")
    assert len(before) + n_quarantine == n_source

    counting: list[_CountingEmbedder] = []
    build = runner.build_embedder

    def counted(name: str, **options: object) -> _CountingEmbedder:
        counting.append(_CountingEmbedder(build(name, **options)))
        return counting[-1]

    monkeypatch.setattr(runner, "build_embedder", counted)
    config.topics.window_days = 60  # the first export's oldest month falls out of the window
    result = runner.refit_topics(config)
    assert result["refit"] and counting and sum(c.encoded for c in counting) == 0  # nothing encoded

    with open_warehouse(config.warehouse) as wh:
        after = wh.read("feedback_enriched").set_index("response_id").sort_index()
        registry = wh.read("topics")
        assert wh.count("survey_responses") == n_source and wh.count("quarantine") == n_quarantine
    assert after.index.equals(before.index)  # rows in = enriched + quarantined still holds
    answered = ~after["is_non_answer"].astype(bool)
    start = after.loc[answered, "submitted_at"].max() - timedelta(days=60)
    window = answered & (after["submitted_at"] >= start)
    assert 0 < window.sum() < answered.sum() and result["rows_reassigned"] == window.sum()
    active = registry[registry["status"] == "active"]
    assert set(active["model_version"]) == {result["model_version"]}
    rows = after[window]
    assert set(rows["topic_id"]) <= set(active["topic_id"]) | {-1}
    assert (rows["topic_model_version"] == result["model_version"]).all()
    label = dict(zip(active["topic_id"], active["label"], strict=True))
    assigned = rows[rows["topic_id"] >= 0]
    assert (assigned["topic_label"] == assigned["topic_id"].map(label)).all()  # the report's labels agree
    # rows outside the window and non-answers are left as they were; other columns are untouched
    pd.testing.assert_frame_equal(after[~window], before[~window])
    other = [c for c in after.columns if c not in ("topic_id", "topic_label", "topic_model_version")]
    pd.testing.assert_frame_equal(after[other], before[other])
