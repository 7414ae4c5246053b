"""The topics' rolling window reads only its stretch of feedback_enriched, with the same result as a
read of the whole table."""

from __future__ import annotations

import json
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.topics.window import topic_window
from pipeline.warehouse import open_warehouse

DAY0 = pd.Timestamp("2026-01-01 08:00")


def _reference(stored: pd.DataFrame, new: pd.DataFrame, days: int) -> tuple[set[str], pd.Timestamp | None]:
    """The window by the old rule: every row in memory, filtered by pandas."""
    rows = stored[~stored["is_non_answer"]].rename(columns={"text_redacted": "text"})
    both = pd.concat([new, rows[["text", "submitted_at"]]], ignore_index=True)
    both = both[both["text"].str.strip().ne("") & both["submitted_at"].notna()]
    if both.empty:
        return set(), None
    start = both["submitted_at"].max() - timedelta(days=days)
    return set(both.loc[both["submitted_at"] >= start, "text"]), start


def _stored(n: int, non_answer_after: int | None, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = np.sort(rng.integers(0, 200, n))
    return pd.DataFrame(
        {
            "response_id": [f"r{i}" for i in range(n)],
            "text_redacted": [f"answer {i}" if i % 17 else "  " for i in range(n)],
            "submitted_at": [DAY0 + timedelta(days=int(d), hours=i % 24) for i, d in enumerate(days)],
            "is_non_answer": [bool(non_answer_after is not None and d >= non_answer_after) for d in days],
            "language": ["en"] * n,
            "tags": [["price"]] * n,
        }
    )


@pytest.mark.parametrize(
    ("non_answer_after", "with_new", "window_days"),
    [
        (None, False, 90),  # plain: the latest stored answer ends the window
        (None, True, 30),  # new rows are the latest
        (170, False, 90),  # the latest 30 days are non-answers: the window ends earlier (second range)
        (0, True, 90),  # every stored row is a non-answer: only the new rows
        (0, False, 90),  # nothing usable at all
        (190, False, 5),  # nothing usable in the last stretch: look further back
    ],
)
def test_window_reads_a_range_and_matches_the_whole_table_rule(
    tmp_path, non_answer_after, with_new, window_days
):
    cfg = tmp_path / "enrichment.yaml"
    cfg.write_text(
        json.dumps(
            {
                "warehouse": str(tmp_path / "wh.duckdb"),
                "state_dir": str(tmp_path / "state"),
                "embedder": {"name": "hashing"},
                "topics": {"name": "topics.stable.v1", "window_days": window_days},
            }
        )
    )
    config = load_config(cfg)
    stored = _stored(400, non_answer_after, seed=window_days)
    new = pd.DataFrame(
        {
            "text": ["new one", "new two", ""] if with_new else [],
            "submitted_at": [DAY0 + timedelta(days=d) for d in (205, 150, 206)] if with_new else [],
        }
    )
    with open_warehouse(config.warehouse) as wh:
        wh.upsert(config.tables.enriched, stored, key=["response_id"])
        whole_reads = []
        read = wh.read

        def spy(table, *args, **kwargs):
            whole_reads.append(table)
            return read(table, *args, **kwargs)

        wh.read = spy  # type: ignore[method-assign]
        window = topic_window(
            wh,
            config,
            new["text"].tolist() or None,
            new["submitted_at"].tolist() or None,
            ["en"] * len(new) or None,
        )
    assert config.tables.enriched not in whole_reads
    texts, start = _reference(stored, new, window_days)
    assert set(window["text"]) == texts
    assert window.attrs["start"] == start
    assert window["text"].is_unique and window["submitted_at"].notna().all()
    if with_new and texts:
        assert window["text"].iloc[0] == "new one"  # new rows first (their tags are not known yet)


@pytest.mark.parametrize(
    ("non_answer_after", "cap", "page"), [(None, 50, 7), (170, 50, 1000), (None, 10_000, 64), (0, 50, 7)]
)
def test_window_sample_draws_the_content_sample_of_the_window_page_by_page(
    tmp_path, non_answer_after, cap, page
):
    """window_sample (what a run fits on) holds at most 2 x cap candidates, yet draws exactly the texts
    fit_sample draws from the whole window: same window, same content-hash sample, repeats counted once."""
    from pipeline.topics.window import fit_sample, window_sample

    cfg = tmp_path / "enrichment.yaml"
    cfg.write_text(
        json.dumps(
            {
                "warehouse": str(tmp_path / "wh.duckdb"),
                "state_dir": str(tmp_path / "state"),
                "embedder": {"name": "hashing"},
                "topics": {"name": "topics.stable.v1", "window_days": 90},
            }
        )
    )
    config = load_config(cfg)
    stored = _stored(400, non_answer_after, seed=3)
    stored.loc[stored.index % 5 == 0, "text_redacted"] = "the same answer again"  # repeated texts
    with open_warehouse(config.warehouse) as wh:
        wh.upsert(config.tables.enriched, stored, key=["response_id"])
        whole = topic_window(wh, config)
        expected = fit_sample(whole, cap)
        sample = window_sample(wh, config, cap, page_size=page)
    assert set(sample["text"]) == set(expected["text"])
    assert len(sample) == min(cap, len(whole)) and sample["text"].is_unique
    assert sample.attrs["start"] == whole.attrs["start"]
    assert sample.attrs.get("window_size", 0) == len(whole)
    if len(sample):
        assert sample["language"].eq("en").all() and all(list(t) == ["price"] for t in sample["tags"])
        assert sample["submitted_at"].min() >= whole.attrs["start"]
