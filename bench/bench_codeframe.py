"""Benchmark: themes on a team's own codeframe from day one (issue 17): zero-shot rules, self-training and
keyword rules against a tagger trained on labels, on taxonomies the project never tuned on.

Protocol (also in bench/README.md, "Codeframe"):

- Sets: every labelled set of ``../shared/data`` with theme tags, English rows:
  ``airline_tweets_en_dev`` (9 complaint reasons, at most one per tweet, ``[]`` for none),
  ``semeval16_restaurants_sentences_train`` (12 aspect categories), and the same sentences mapped to 4
  coarse themes (FOOD#* -> food, SERVICE#* -> service, AMBIENCE#* -> ambience, *#PRICES -> price), which
  simulates the external "restaurant themes" check. Each set has a taxonomy in ``bench/taxonomies/``
  written from the label names alone (a one-line description and 2-3 generic example phrases each, no
  look at which texts carry which tag).
- A fixed split per set (seed 0): half "dev" (rule choices were tuned on it only) and half "test" (the
  figures reported). SemEval is split by review, so sentences of one review stay together.
- Zero-shot: the tagger as ``feedback tagger train`` builds it without labels, applied as the nightly run
  applies it (answer and sentence tags), on the test half; "before" is the old rule (absolute cosine 0.28,
  top 2, margin 0.02), "after" the current one.
- Self-trained: :func:`pipeline.tagging.selftrain.self_train` on the test half's texts without their
  labels (the weekly window), then the test half tagged with it, exactly what ``feedback tagger train
  --data <unlabelled> --taxonomy FILE`` then ``tagger predict`` do.
- Trained on labels (the reference): ``EmbeddingTfidfTagger`` trained on the dev half's labels and the
  taxonomy's phrases, scored on the test half.
- Bundled sample: the demo's survey (``generate_survey(seed=0)``) with its true themes and the project
  taxonomy: zero-shot micro/macro F1 and the share of answers tagged.

Embeddings are cached outside the repository (``--cache-dir``, default /tmp/cf_cache): each distinct
sentence is encoded once. Nothing from ../shared/data is written into the repository; the JSON holds
numbers only.

Example (from the repository root)::

    nice .venv/bin/python bench/bench_codeframe.py --cache-dir /tmp/cf_cache
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere without installing the package
    sys.path.insert(0, str(REPO_ROOT))

from pipeline.embed import CachedEmbedder, build_embedder  # noqa: E402
from pipeline.embed.response import AnswerEmbedder  # noqa: E402
from pipeline.tagging.metrics import rollup, tagging_report  # noqa: E402
from pipeline.tagging.taxonomy import Taxonomy, load_taxonomy  # noqa: E402

log = logging.getLogger("bench_codeframe")

DEFAULT_DATA_DIR = REPO_ROOT.parent / "shared" / "data"
DEFAULT_CACHE = Path("/tmp/cf_cache")
DEFAULT_OUT = REPO_ROOT / "bench" / "results" / "codeframe.json"
TAXONOMIES = REPO_ROOT / "bench" / "taxonomies"
SEED = 0


# ------------------------------------------------------------------------------------------- vector cache
class NpzVectorStore:
    """A vector store (:class:`pipeline.embed.cache.VectorStore`) kept in one ``.npz`` file per model id,
    so that every bench run after the first encodes nothing."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._data: dict[str, dict[str, np.ndarray]] = {}
        self._dirty: set[str] = set()

    def _file(self, model_id: str) -> Path:
        return self.folder / f"{model_id.replace('/', '_')}.npz"

    def _load(self, model_id: str) -> dict[str, np.ndarray]:
        if model_id not in self._data:
            path = self._file(model_id)
            if path.exists():
                with np.load(path) as z:
                    keys, vecs = z["keys"], z["vectors"]
                self._data[model_id] = dict(zip(keys.tolist(), vecs, strict=True))
            else:
                self._data[model_id] = {}
        return self._data[model_id]

    def read_vectors(self, model_id: str, hashes: list[str]) -> dict[str, np.ndarray]:
        """Stored vectors of the given hashes."""
        store = self._load(model_id)
        return {h: store[h] for h in hashes if h in store}

    def write_vectors(self, model_id: str, hashes: list[str], vectors: np.ndarray) -> int:
        """Keep vectors (written to disk by :meth:`flush`)."""
        store = self._load(model_id)
        for h, v in zip(hashes, vectors, strict=True):
            store[h] = np.asarray(v, dtype=np.float32)
        self._dirty.add(model_id)
        return len(hashes)

    def flush(self) -> None:
        """Write the changed model ids' files."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for model_id in sorted(self._dirty):
            store = self._data[model_id]
            tmp = self._file(model_id).with_suffix(".tmp.npz")
            np.savez(tmp, keys=np.array(list(store)), vectors=np.stack(list(store.values())))
            tmp.replace(self._file(model_id))
        self._dirty.clear()


# ------------------------------------------------------------------------------------------- data sets
@dataclass
class BenchSet:
    """One labelled set: prepared texts, gold tags (taxonomy names), split and answer vectors."""

    name: str
    taxonomy: Taxonomy
    texts: list[str]
    langs: list[str | None]
    gold: list[list[str]]
    dev: np.ndarray
    test: np.ndarray
    vectors: np.ndarray


def snake(label: str) -> str:
    """A label name as a taxonomy tag name ("Late Flight" -> late_flight, FOOD#QUALITY -> food_quality)."""
    out = "".join(c.lower() if c.isalnum() else "_" for c in label)
    return "_".join(p for p in out.split("_") if p)


def theme_of(category: str) -> list[str]:
    """SemEval category -> the 4 coarse restaurant themes it belongs to."""
    entity, _, attribute = category.partition("#")
    themes = {"FOOD": ["food"], "SERVICE": ["service"], "AMBIENCE": ["ambience"]}.get(entity, [])
    return themes + (["price"] if attribute == "PRICES" else [])


SETS: dict[str, tuple[str, str, Callable[[str], list[str]]]] = {
    "airline_reasons": ("airline_tweets_en_dev", "airline_reasons.yaml", lambda t: [snake(t)]),
    "semeval_aspects": (
        "semeval16_restaurants_sentences_train",
        "semeval_aspects.yaml",
        lambda t: [snake(t)],
    ),
    "restaurant_themes": ("semeval16_restaurants_sentences_train", "restaurant_themes.yaml", theme_of),
}


def split_halves(ids: Sequence[str], grouped: bool) -> tuple[np.ndarray, np.ndarray]:
    """A fixed 50/50 dev/test split (by review, the id before ':', when ``grouped``)."""
    rng = np.random.default_rng(SEED)
    keys = np.array([i.split(":")[0] for i in ids]) if grouped else np.asarray(ids)
    unique = np.unique(keys)
    dev_keys = set(rng.permutation(unique)[: len(unique) // 2].tolist())
    is_dev = np.array([k in dev_keys for k in keys])
    return np.flatnonzero(is_dev), np.flatnonzero(~is_dev)


def load_set(name: str, data_dir: Path, answers: AnswerEmbedder) -> BenchSet:
    """Read, prepare, map and embed one set (English rows with tag labels)."""
    import pandas as pd

    from pipeline.prepare import model_texts

    file, tax_file, mapper = SETS[name]
    df = pd.read_parquet(data_dir / f"{file}.parquet")
    df = df[(df["lang"] == "en") & df["tags"].notna()].reset_index(drop=True)
    taxonomy = load_taxonomy(TAXONOMIES / tax_file)
    names = set(taxonomy.names)
    gold = [
        list(dict.fromkeys(t for label in tags for t in mapper(label) if t in names)) for tags in df["tags"]
    ]
    texts = model_texts(df["text"].tolist())
    langs: list[str | None] = df["lang"].tolist()
    dev, test = split_halves(df["id"].astype(str).tolist(), grouped="semeval" in file)
    vectors = answers.embed(texts, languages=langs)
    return BenchSet(name, taxonomy, texts, langs, gold, dev, test, vectors)


def sample_set(answers: AnswerEmbedder) -> BenchSet:
    """The demo's sample survey (seed 0) with its true themes, answered rows only."""
    from pipeline.demo.sample import generate_survey
    from pipeline.prepare import model_texts

    df = generate_survey(seed=0, with_truth=True)
    df = df[df["true_language"].notna() & (df["true_issue"].isna())].reset_index(drop=True)
    texts = model_texts(df["comment"].tolist())
    langs: list[str | None] = df["true_language"].tolist()
    taxonomy = load_taxonomy(REPO_ROOT / "configs" / "taxonomy.yaml")
    idx = np.arange(len(df))
    vectors = answers.embed(texts, languages=langs)
    parents = {t.name: t.parent for t in taxonomy.tags}
    gold = [rollup(list(t), parents) for t in df["true_tags"]]  # as `tagger evaluate` scores a hierarchy
    return BenchSet("sample", taxonomy, texts, langs, gold, idx, idx, vectors)


def report(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]], names: Sequence[str]
) -> dict[str, Any]:
    """Micro/macro F1 (in points) over the taxonomy's tags, and the share of rows given any tag."""
    r = tagging_report(gold, predicted, tag_names=list(names))
    return {
        "micro_f1": round(100 * r["micro_f1"], 1),
        "macro_f1": round(100 * r["macro_f1"], 1),
        "tagged_share": round(100 * float(np.mean([bool(p) for p in predicted])), 1),
    }


# ------------------------------------------------------------------------------------------- taggers
def labelled(s: BenchSet, rows: np.ndarray, with_tags: bool = True) -> Any:
    """Rows of a set as :class:`pipeline.tagging.data.LabelledData` (embedded)."""
    import pandas as pd

    from pipeline.tagging.data import LabelledData

    frame = pd.DataFrame(
        {
            "id": [str(i) for i in rows],
            "text": [s.texts[i] for i in rows],
            "tags": [list(s.gold[i]) if with_tags else None for i in rows],
            "lang": [s.langs[i] for i in rows],
            "group": [None] * len(rows),
        }
    )
    return LabelledData(frame, s.vectors[rows], [s.name], "usem3")


def zero_shot(s: BenchSet, rows: np.ndarray, answers: AnswerEmbedder, rule: str) -> list[list[str]]:
    """The zero-shot tagger's tags (answers and their sentences, as the nightly run applies it)."""
    from pipeline.tagging.evaluation import predict_tags
    from pipeline.tagging.zeroshot import ZeroShotTagger

    before = rule == "absolute"  # the first rule: absolute threshold, no name prototypes
    model = ZeroShotTagger(s.taxonomy, rule=rule, name_prototype=not before).fit(answers.base)  # type: ignore[arg-type]
    return predict_tags(model, labelled(s, rows), answers)[0]


def self_trained(
    s: BenchSet, rows: np.ndarray, answers: AnswerEmbedder
) -> tuple[list[list[str]], dict[str, Any]]:
    """Self-train on the rows' texts (no labels), then tag them; the self-training report."""
    from pipeline.tagging.evaluation import predict_tags
    from pipeline.tagging.selftrain import self_train

    result = self_train([s.texts[i] for i in rows], s.vectors[rows], s.taxonomy, answers.base)  # type: ignore[arg-type]
    tags = predict_tags(result.model, labelled(s, rows), answers)[0]
    return tags, {"mode": result.mode, **result.report}


def trained_on_labels(
    s: BenchSet, train: np.ndarray, test: np.ndarray, answers: AnswerEmbedder
) -> list[list[str]]:
    """A tagger trained on the dev half's labels (and the taxonomy's phrases), tags of the test half."""
    from pipeline.tagging.evaluation import predict_tags
    from pipeline.tagging.lifecycle import train_tagger

    model, _ = train_tagger(labelled(s, train), answers, taxonomy=s.taxonomy)
    return predict_tags(model, labelled(s, test), answers)[0]


def bench_set(s: BenchSet, answers: AnswerEmbedder) -> dict[str, Any]:
    """All the figures of one set (test half; dev-half figures of the zero-shot rules alongside)."""
    names = s.taxonomy.names
    out: dict[str, Any] = {"rows": {"dev": len(s.dev), "test": len(s.test)}, "tags": names}
    gold_test = [s.gold[i] for i in s.test]
    gold_dev = [s.gold[i] for i in s.dev]
    out["gold_tagged_share"] = round(100 * float(np.mean([bool(g) for g in gold_test])), 1)
    for rule, key in (("absolute", "zero_shot_before"), ("calibrated", "zero_shot")):
        t0 = time.perf_counter()
        out[key] = report(gold_test, zero_shot(s, s.test, answers, rule), names)
        out[key]["dev"] = report(gold_dev, zero_shot(s, s.dev, answers, rule), names)
        log.info("%s %s: %s (%.0fs)", s.name, key, out[key], time.perf_counter() - t0)
    t0 = time.perf_counter()
    tags, st = self_trained(s, s.test, answers)
    out["self_trained"] = {**report(gold_test, tags, names), "gate": st.get("gate"), "mode": st["mode"]}
    out["self_trained"]["dev"] = report(gold_dev, self_trained(s, s.dev, answers)[0], names)
    out["self_trained"]["seconds"] = round(time.perf_counter() - t0, 1)
    log.info("%s self-trained: %s", s.name, out["self_trained"])
    if s.dev is not s.test:
        out["trained_on_labels"] = report(gold_test, trained_on_labels(s, s.dev, s.test, answers), names)
        log.info("%s trained on labels: %s", s.name, out["trained_on_labels"])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and write the JSON."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    ap.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--sets", nargs="+", default=[*SETS, "sample"], help="which sets (default all)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("pipeline.embed.cache", "pipeline.tagging.trained"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    store = NpzVectorStore(args.cache_dir)
    answers = AnswerEmbedder(CachedEmbedder(build_embedder("embedder.usem3.v1"), store))
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name in args.sets:
        if name != "sample" and not (args.data_dir / f"{SETS[name][0]}.parquet").exists():
            log.warning("%s: %s not found, skipped", name, args.data_dir)
            continue
        s = sample_set(answers) if name == "sample" else load_set(name, args.data_dir, answers)
        store.flush()
        results[name] = bench_set(s, answers)
        store.flush()
    payload = {
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "encoder": answers.model_id,
        "machine": {"python": platform.python_version()},
        "seconds": round(time.perf_counter() - t0, 1),
        "sets": results,
    }
    if args.out.exists() and set(args.sets) != {*SETS, "sample"}:  # a partial run updates its sets only
        old = json.loads(args.out.read_text(encoding="utf-8"))
        payload["sets"] = {**old.get("sets", {}), **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    log.info("written to %s", args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
