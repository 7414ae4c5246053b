"""Two commits side by side on one machine: the pipeline bench of ``bench_pipeline.py`` on each, interleaved.

Each commit is checked out into a temporary git worktree and run with this virtual environment
(``PYTHONPATH`` puts the worktree's ``pipeline`` first), one full first run over the same throughput
texts per repeat, alternating old and new so that a noisy, shared machine weighs on both alike. The
medians and the new/old ratios are written as JSON.

Usage (from the repository root):
  .venv/bin/python bench/bench_compare.py --old 559f0e5 --new HEAD --rows 20000 --repeats 3
  (--new WORKTREE compares the working tree as it is, uncommitted changes included)
Reads ../shared/data/throughput_dev_texts.parquet (skips if absent).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "throughput_dev_texts.parquet"
BENCH = ROOT / "bench" / "bench_pipeline.py"


def checkout(rev: str, into: Path) -> Path:
    """A worktree of ``rev`` (or this working tree for "WORKTREE")."""
    if rev == "WORKTREE":
        return ROOT
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(into), rev], cwd=ROOT, check=True, capture_output=True
    )
    return into


def run_child(tree: Path, mode: str, rows: int, workdir: Path) -> dict:
    """One first run of ``tree``'s pipeline (a bench_pipeline mode: full or prefect) in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, str(BENCH), "--child", mode, "--rows", str(rows), "--workdir", str(workdir)],
        capture_output=True,
        text=True,
        cwd=tree,
        env=env,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{tree} {mode} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True, help="the earlier commit")
    p.add_argument("--new", default="WORKTREE", help="the later commit (default: the working tree)")
    p.add_argument("--rows", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--mode", choices=["full", "prefect"], default="full", help="bench_pipeline mode")
    p.add_argument("--out", default=None, help="default bench/results/compare_<mode>.json")
    args = p.parse_args()
    if not DATA.exists():
        print(f"skipped: {DATA} not found")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-compare-") as tmp:
        trees = {"old": checkout(args.old, Path(tmp) / "old"), "new": checkout(args.new, Path(tmp) / "new")}
        runs: dict[str, list[dict]] = {"old": [], "new": []}
        try:
            for i in range(args.repeats):
                for side in ("old", "new") if i % 2 == 0 else ("new", "old"):
                    work = Path(tmp) / f"{side}-{i}"
                    work.mkdir()
                    result = run_child(trees[side], args.mode, args.rows, work)
                    runs[side].append(result)
                    shown = {k: round(v, 2) for k, v in result.items() if isinstance(v, int | float)}
                    print(f"repeat {i + 1} {side}: {shown}", flush=True)
        finally:
            for tree in trees.values():
                if tree != ROOT:
                    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)

    def med(side: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[side])

    keys = [k for k, v in runs["new"][0].items() if isinstance(v, int | float) and k in runs["old"][0]]
    result = {
        "old": args.old,
        "new": args.new,
        "rows": args.rows,
        "repeats": args.repeats,
        "median": {side: {k: med(side, k) for k in keys} for side in ("old", "new")},
        "mode": args.mode,
        "new_over_old": {k: med("new", k) / med("old", k) for k in keys if med("old", k)},
        "runs": runs,
    }
    out = Path(args.out or ROOT / "bench" / "results" / f"compare_{args.mode}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({"median": result["median"], "new_over_old": result["new_over_old"]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
