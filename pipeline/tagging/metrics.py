"""Multi-label tagging metrics: micro/macro F1, per tag and per language (the ``tagger evaluate`` JSON)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def rollup(tags: Sequence[str], parents: Mapping[str, str | None]) -> list[str]:
    """A tag list plus every ancestor of its tags (each once, order kept: tags first)."""
    out = list(dict.fromkeys(tags))
    seen = set(out)
    for t in list(out):
        p = parents.get(t)
        while p and p not in seen:
            out.append(p)
            seen.add(p)
            p = parents.get(p)
    return out


def binarize(tag_lists: Sequence[Sequence[str]], names: Sequence[str]) -> np.ndarray:
    """An (n, len(names)) 0/1 matrix; tags not in ``names`` are ignored."""
    col = {n: j for j, n in enumerate(names)}
    y = np.zeros((len(tag_lists), len(names)), dtype=np.int8)
    for i, tags in enumerate(tag_lists):
        for t in tags:
            j = col.get(t)
            if j is not None:
                y[i, j] = 1
    return y


def _prf(tp: float, fp: float, fn: float) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return p, r, f


def micro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Micro-averaged F1 of two 0/1 matrices."""
    t, p = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    return _prf(float((t & p).sum()), float((~t & p).sum()), float((t & ~p).sum()))[2]


def tagging_report(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    langs: Sequence[str | None] | None = None,
    tag_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Scores of predicted tag lists against gold ones.

    Args:
        gold: Gold tags per row.
        predicted: Predicted tags per row.
        langs: Language per row (rows with None are left out of ``per_lang`` only).
        tag_names: The tags scored (default: every tag seen in gold or predictions). Micro F1 counts
            every scored tag; macro F1 averages the tags that occur in gold.

    Returns:
        ``micro_f1``, ``macro_f1``, ``micro_precision``, ``micro_recall``, ``n_rows``, ``per_lang``
        ({lang: {micro_f1, n_rows}}) and ``per_tag`` ({tag: {precision, recall, f1, support, predicted}}).
    """
    if len(gold) != len(predicted):
        raise ValueError(f"gold has {len(gold)} rows, predictions {len(predicted)}")
    names = (
        list(tag_names) if tag_names is not None else sorted({t for ts in [*gold, *predicted] for t in ts})
    )
    yt, yp = binarize(gold, names).astype(bool), binarize(predicted, names).astype(bool)
    tp, fp, fn = (yt & yp).sum(0), (~yt & yp).sum(0), (yt & ~yp).sum(0)
    p, r, f = _prf(float(tp.sum()), float(fp.sum()), float(fn.sum()))
    per_tag: dict[str, dict[str, float | int]] = {}
    for j, name in enumerate(names):
        pj, rj, fj = _prf(float(tp[j]), float(fp[j]), float(fn[j]))
        per_tag[name] = {
            "precision": round(pj, 4),
            "recall": round(rj, 4),
            "f1": round(fj, 4),
            "support": int(yt[:, j].sum()),
            "predicted": int(yp[:, j].sum()),
        }
    present = [per_tag[n]["f1"] for n in names if per_tag[n]["support"] > 0]
    per_lang: dict[str, dict[str, float | int]] = {}
    if langs is not None:
        lang_arr = np.array([str(x) if isinstance(x, str) and x else "" for x in langs])
        for lang in sorted(set(lang_arr) - {""}):
            m = lang_arr == lang
            per_lang[lang] = {"micro_f1": round(micro_f1(yt[m], yp[m]), 4), "n_rows": int(m.sum())}
    return {
        "micro_f1": round(f, 4),
        "macro_f1": round(float(np.mean(present)) if present else 0.0, 4),
        "micro_precision": round(p, 4),
        "micro_recall": round(r, 4),
        "n_rows": len(gold),
        "per_lang": per_lang,
        "per_tag": per_tag,
    }


def error_table(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], texts: Sequence[str], tag: str
) -> list[dict[str, Any]]:
    """Rows where ``tag`` is missed or wrongly given: ``kind`` (missed/extra), text, gold, predicted."""
    rows = []
    for g, p, t in zip(gold, predicted, texts, strict=True):
        if (tag in g) != (tag in p):
            rows.append(
                {"kind": "missed" if tag in g else "extra", "text": t, "gold": list(g), "predicted": list(p)}
            )
    return rows
