"""Stable topic ids across refits: match a new fit to the previous one, record splits and merges.

Plain functions, no warehouse and no Prefect. A refit assigns the same window of texts twice, once
with the previous model and once with the new one; the overlap of the two assignments says which new
topic continues which old one:

* kept: a new topic and an old topic share most of their texts (Hungarian matching on the Jaccard
  overlap, above ``min_jaccard``); the new topic keeps the old id.
* split: an old topic whose texts now fall in several new topics, each of them mostly made of that old
  topic's texts. The best-overlapping part keeps the old id (when matched), the others get new ids and
  the history records the old id as their parent.
* merge: a new topic made of several old topics' texts, each old topic mostly gone into it. The new
  topic keeps the id of its best match; the other old ids are retired into it.
* new: a new topic that continues nothing gets the next unused id.
* retired: an old topic that nothing continues.

Ids are never reused, so a report can follow one id week after week.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from pipeline.schema import TOPIC_HISTORY_COLUMNS as HISTORY_COLUMNS


@dataclass
class TopicMatch:
    """The outcome of matching a new fit to the previous topics.

    Attributes:
        mapping: New local topic id -> stable id.
        events: One dict per history event (see :data:`HISTORY_COLUMNS`, without model_version and
            created_at, which the caller adds).
        next_id: The first id not used yet, after this match.
    """

    mapping: dict[int, int]
    events: list[dict] = field(default_factory=list)
    next_id: int = 0

    def history(self, model_version: str, created_at: pd.Timestamp) -> pd.DataFrame:
        """The events as ``topic_history`` rows (``related_ids`` as JSON text, e.g. "[12, 13]").

        JSON text rather than a list column: a first fit has only empty lists, from which a warehouse
        cannot tell the list's item type.
        """
        rows = [
            {
                "model_version": model_version,
                **e,
                "related_ids": json.dumps([int(v) for v in e["related_ids"]]),
                "created_at": created_at,
            }
            for e in self.events
        ]
        frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
        frame["created_at"] = pd.to_datetime(frame["created_at"]).astype("datetime64[us]")
        return frame


def _contingency(old: np.ndarray, new: np.ndarray) -> tuple[np.ndarray, list[int], list[int]]:
    old_ids = sorted(set(old.tolist()) - {-1})
    new_ids = sorted(set(new.tolist()) - {-1})
    table = np.zeros((len(old_ids), len(new_ids)), dtype=float)
    oi = {t: i for i, t in enumerate(old_ids)}
    ni = {t: i for i, t in enumerate(new_ids)}
    for o, n in zip(old.tolist(), new.tolist(), strict=True):
        if o != -1 and n != -1:
            table[oi[o], ni[n]] += 1
    return table, old_ids, new_ids


def match_topics(
    old_labels: np.ndarray | list[int],
    new_labels: np.ndarray | list[int],
    next_id: int,
    min_jaccard: float = 0.3,
    part_share: float = 0.15,
    purity: float = 0.5,
    old_ids: list[int] | None = None,
) -> TopicMatch:
    """Give the topics of a new fit stable ids by their overlap with the previous topics.

    Args:
        old_labels: Stable topic id of each window text under the previous model (-1: outlier).
        new_labels: Topic id of the same texts under the new model (local ids, -1: outlier).
        next_id: The first never-used stable id (one more than the registry's largest id).
        min_jaccard: Overlap (intersection over union of the two topics' texts) a kept topic needs.
        part_share: Share of an old topic's texts a new topic must take to count as a part of a split
            (or of a new topic's texts an old topic must bring to count in a merge).
        purity: Share of a split part's texts that must come from the old topic (and share of a merged
            old topic's texts that must go to the new topic).
        old_ids: Every id of the previous model; ids that no window text falls into are retired
            (default: the ids found in ``old_labels``).

    Returns:
        The mapping (every new topic gets a stable id) and the history events.
    """
    from scipy.optimize import linear_sum_assignment

    old = np.asarray(old_labels, dtype=int)
    new = np.asarray(new_labels, dtype=int)
    if old.shape != new.shape:
        raise ValueError(f"old_labels ({old.shape}) and new_labels ({new.shape}) differ in shape")
    table, found_old, new_ids = _contingency(old, new)
    extra = sorted({int(t) for t in (old_ids or [])} - set(found_old))
    old_ids = found_old + extra
    table = np.vstack([table, np.zeros((len(extra), table.shape[1]))]) if extra else table
    old_size = np.array([(old == t).sum() for t in old_ids], dtype=float)
    new_size = np.array([(new == t).sum() for t in new_ids], dtype=float)
    union = old_size[:, None] + new_size[None, :] - table
    jaccard = np.divide(table, union, out=np.zeros_like(table), where=union > 0)

    kept: dict[int, int] = {}  # new index -> old index
    if table.size:
        rows, cols = linear_sum_assignment(-jaccard)
        for r, c in zip(rows, cols, strict=True):
            if jaccard[r, c] >= min_jaccard:
                kept[int(c)] = int(r)
    mapping: dict[int, int] = {}
    events: list[dict] = []
    for c, r in sorted(kept.items()):
        mapping[new_ids[c]] = old_ids[r]
        events.append(
            {
                "event": "kept",
                "topic_id": old_ids[r],
                "related_ids": [old_ids[r]],
                "overlap": round(float(jaccard[r, c]), 4),
                "detail": f"new topic {new_ids[c]} continues topic {old_ids[r]}",
            }
        )
    share_of_old = np.divide(table, old_size[:, None], out=np.zeros_like(table), where=old_size[:, None] > 0)
    share_of_new = np.divide(table, new_size[None, :], out=np.zeros_like(table), where=new_size[None, :] > 0)

    # New topics that continue nothing: a split part when they come mostly from one old topic that
    # also lives on elsewhere, else brand new.
    for c, t in enumerate(new_ids):
        if c in kept:
            continue
        mapping[t] = next_id
        r = int(np.argmax(table[:, c])) if len(old_ids) else -1
        if r >= 0 and share_of_new[r, c] >= purity and share_of_old[r, c] >= part_share:
            events.append(
                {
                    "event": "split",
                    "topic_id": next_id,
                    "related_ids": [old_ids[r]],
                    "overlap": round(float(share_of_old[r, c]), 4),
                    "detail": f"split from topic {old_ids[r]} ({share_of_old[r, c]:.0%} of its texts)",
                }
            )
        else:
            events.append(
                {
                    "event": "new",
                    "topic_id": next_id,
                    "related_ids": [],
                    "overlap": 0.0,
                    "detail": "a theme not seen before",
                }
            )
        next_id += 1

    # Old topics that nothing continues: merged into the new topic that took most of them, or retired.
    continued = set(kept.values())
    for r, t in enumerate(old_ids):
        if r in continued:
            continue
        c = int(np.argmax(table[r])) if len(new_ids) else -1
        if c >= 0 and share_of_old[r, c] >= purity and share_of_new[r, c] >= part_share:
            target = mapping[new_ids[c]]
            events.append(
                {
                    "event": "merge",
                    "topic_id": target,
                    "related_ids": sorted(
                        {old_ids[j] for j in np.flatnonzero(share_of_new[:, c] >= part_share)} | {t}
                    ),
                    "overlap": round(float(share_of_old[r, c]), 4),
                    "detail": f"topic {t} merged into topic {target}",
                }
            )
            events.append(
                {
                    "event": "retired",
                    "topic_id": t,
                    "related_ids": [target],
                    "overlap": round(float(share_of_old[r, c]), 4),
                    "detail": f"merged into topic {target}",
                }
            )
        else:
            events.append(
                {
                    "event": "retired",
                    "topic_id": t,
                    "related_ids": [],
                    "overlap": 0.0,
                    "detail": "no longer found in the window",
                }
            )
    return TopicMatch(mapping=mapping, events=events, next_id=next_id)


def first_match(new_ids: list[int] | np.ndarray, next_id: int = 0) -> TopicMatch:
    """Ids for a first fit (no previous model): every topic is new, numbered from ``next_id``."""
    mapping: dict[int, int] = {}
    events: list[dict] = []
    for t in [int(v) for v in new_ids]:
        mapping[t] = next_id
        events.append(
            {
                "event": "new",
                "topic_id": next_id,
                "related_ids": [],
                "overlap": 0.0,
                "detail": "first fit",
            }
        )
        next_id += 1
    return TopicMatch(mapping=mapping, events=events, next_id=next_id)
