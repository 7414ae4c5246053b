"""Topic models measured on a file: read and prepare it as the nightly run prepares answers, fit, assign,
and score (outlier share, stability across seeds, order and resamples, NMI with human themes and with
language). ``feedback topics evaluate`` and ``bench/bench_topics.py`` run these."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import FeedbackError


def tag_list(value: object) -> list[str] | None:
    """Tags as a list: lists pass, "a|b" strings are split, null stays None."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, list | tuple | np.ndarray):
        return [str(v) for v in value]
    text = str(value).strip()
    return [t for t in text.split("|") if t] if text else []


def read_topic_data(path: str, text_column: str = "text", prepare: Any = None) -> pd.DataFrame:
    """Read a CSV/Parquet file and check its columns (texts prepared with the run's ``prepare`` options,
    a :class:`pipeline.prepare.PrepareConfig`; the defaults when None).

    Returns:
        Columns id, text, lang (None when absent) and tags (None when absent).
    """
    from pipeline.ingest.source import file_ids, read_export
    from pipeline.prepare import is_missing, model_texts

    df = read_export(path)
    if text_column not in df.columns:
        raise FeedbackError(
            f"{path}: no column {text_column!r}; found {list(df.columns)}. Use --text-column."
        )
    lang_col = next((c for c in ("lang", "language") if c in df.columns), None)
    return pd.DataFrame(
        {
            "id": file_ids(df),
            # What the nightly run's models see (normalised, PII-redacted).
            "text": model_texts(df[text_column].tolist(), prepare),
            # A missing language is "und" (undetermined), as in the nightly run.
            "lang": df[lang_col].map(lambda v: "und" if is_missing(v) else str(v)) if lang_col else None,
            "tags": df["tags"].map(tag_list) if "tags" in df.columns else None,
        }
    )


def fit_topic_model(
    name: str,
    options: dict[str, Any],
    texts: list[str],
    emb: np.ndarray,
    langs: list[str] | None,
    previous: Any = None,
) -> Any:
    from pipeline.topics import build_topics, fit_topics

    return fit_topics(build_topics(name, **options), texts, emb, langs, previous)


def assign_topic_ids(model: Any, emb: np.ndarray, langs: list[str] | None) -> np.ndarray:
    from pipeline.topics import assign_topics

    return assign_topics(model, emb, langs)


def topic_scores(
    topic_ids: np.ndarray, tags: pd.Series | None, langs: pd.Series | None
) -> dict[str, float | None]:
    """NMI of topics with human themes and with language (outliers count as one more cluster).

    ``nmi_tags`` compares with each row's first tag ("none" for a row with no tag), over the rows whose
    tags are known; ``nmi_tags_tagged`` only over rows with at least one tag; ``nmi_tags_single`` only
    over rows with exactly one tag.
    """
    from sklearn.metrics import normalized_mutual_info_score as nmi

    out: dict[str, float | None] = {
        "nmi_tags": None,
        "nmi_tags_tagged": None,
        "nmi_tags_single": None,
        "nmi_lang": None,
    }
    ids = np.asarray(topic_ids)
    if tags is not None:
        known = tags.map(lambda v: v is not None).to_numpy()
        if known.any():
            first = np.array([v[0] if v else "none" for v in tags[known]])
            n_tags = np.array([len(v) for v in tags[known]])
            k_ids = ids[known]
            out["nmi_tags"] = round(float(nmi(first, k_ids)), 4)
            if (n_tags > 0).any():
                out["nmi_tags_tagged"] = round(float(nmi(first[n_tags > 0], k_ids[n_tags > 0])), 4)
            if (n_tags == 1).any():
                out["nmi_tags_single"] = round(float(nmi(first[n_tags == 1], k_ids[n_tags == 1])), 4)
    if langs is not None:
        out["nmi_lang"] = round(float(nmi(langs.to_numpy(), ids)), 4)
    return out


def evaluate_topics(
    data: pd.DataFrame,
    emb: np.ndarray,
    name: str,
    options: dict[str, Any],
    seed: int = 42,
    resample: bool = True,
) -> dict[str, Any]:
    """The topic benchmark on one labelled file.

    Fits once (timed), once more with another seed on the rows in shuffled order (``stability_ari``),
    and, with ``resample``, on two different random 80% samples, each assigning every row:
    ``resample_ari`` compares two independent fits (robustness to the data, which a deterministic fit
    cannot hide), ``refit_ari`` a fit with a refit on the other sample that starts from it (what the
    weekly refit does).
    """
    from sklearn.metrics import adjusted_rand_score as ari

    texts = data["text"].tolist()
    langs = data["lang"].tolist() if data["lang"] is not None else None
    # Import the heavy keyword backend before the clock starts: "seconds" is the fit's own time.
    with contextlib.suppress(ImportError):
        import bertopic  # noqa: F401
    t0 = time.perf_counter()
    model = fit_topic_model(name, options, texts, emb, langs)
    seconds = time.perf_counter() - t0
    first = assign_topic_ids(model, emb, langs)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    second_model = fit_topic_model(
        name,
        {**options, "seed": seed + 1},
        [texts[i] for i in order],
        emb[order],
        [langs[i] for i in order] if langs else None,
    )
    second = assign_topic_ids(second_model, emb, langs)
    result: dict[str, Any] = {
        "model": name,
        "n_rows": len(texts),
        "n_topics": int(len(model.topic_table())),
        "outlier_share": round(float((first == -1).mean()), 4),
        "stability_ari": round(float(ari(first, second)), 4),
        "fit_transform_agreement": round(
            float((np.asarray(getattr(model, "labels_", first)) == first).mean()), 4
        ),
    }
    result.update(topic_scores(first, data["tags"], data["lang"]))
    if resample:
        samples = [np.sort(rng.choice(len(texts), int(0.8 * len(texts)), replace=False)) for _ in range(2)]

        def fit_on(rows: np.ndarray, k: int, previous: Any = None) -> Any:
            sub_langs = [langs[i] for i in rows] if langs else None
            sub_texts = [texts[i] for i in rows]
            return fit_topic_model(
                name, {**options, "seed": seed + 2 + k}, sub_texts, emb[rows], sub_langs, previous
            )

        first_fit = fit_on(samples[0], 0)
        base = assign_topic_ids(first_fit, emb, langs)
        result["resample_ari"] = round(
            float(ari(base, assign_topic_ids(fit_on(samples[1], 1), emb, langs))), 4
        )
        warm = fit_on(samples[1], 1, previous=first_fit)
        result["refit_ari"] = round(float(ari(base, assign_topic_ids(warm, emb, langs))), 4)
    result["seconds"] = round(seconds, 2)
    return result
