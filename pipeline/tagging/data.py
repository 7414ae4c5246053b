"""Labelled data for the tagger: files or the warehouse table ``tag_labels``, and their embeddings.

A labelled file has the columns of ``../shared/data/README.md``: ``text``, ``tags`` (a list, a
"|"-separated string, or a JSON-like "['a', 'b']" string) and optionally ``id``, ``lang`` and ``group``
(rows sharing a group, e.g. the sentences of one review, stay in one cross-validation fold). A row whose
``tags`` is null (or a file without a ``tags`` column) is unlabelled: set aside in ``LabelledData.unlabelled``
(self-training reads them); ``[]`` (or an empty string in a CSV) means "no tag applies".

Embeddings come from a file cache when one matches (``<cache_dir>/<encoder>/<file_stem>.npy`` with a
``.meta.json`` naming the encoder's model id, the row count and a hash of the file's texts: the layout of
``bench/bench_encoders.py --build-cache``), else from the embedder, and are then written to that cache.
"""

from __future__ import annotations

import ast
import hashlib
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.embed import Embedder
from pipeline.embed.base import texts_digest
from pipeline.errors import FeedbackError, SchemaError, missing_columns
from pipeline.ingest.source import read_export
from pipeline.prepare import PrepareConfig, model_texts

log = logging.getLogger(__name__)

LABEL_TABLE = "tag_labels"
"""Warehouse table where people's tag corrections land (``id``, ``text``, ``tags``, ``lang``, ...)."""

LABEL_COLUMNS = ["id", "text", "tags", "lang", "group"]


def parse_tags(value: object, empty_is_labelled: bool = True) -> list[str] | None:
    """One ``tags`` cell as a list of distinct tag names (first-seen order), or None when unlabelled.

    Args:
        value: A list/array, a "|"-separated string, a JSON-like list string, or null.
        empty_is_labelled: Whether an empty string means "labelled, no tag" (CSV files) rather than null.
    """
    if value is None:
        return None
    if isinstance(value, float) and np.isnan(value):
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return [] if empty_is_labelled else None
        if text.startswith("[") and text.endswith("]"):
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError) as exc:
                raise SchemaError(f"tags value {value!r} looks like a list but cannot be parsed") from exc
            return _distinct(str(t).strip() for t in parsed)
        return _distinct(t.strip() for t in text.split("|"))
    if isinstance(value, (list, tuple, np.ndarray, pd.Series)):
        return _distinct(str(t).strip() for t in value if t is not None)
    raise SchemaError(f"tags value {value!r} of type {type(value).__name__}: expected a list or 'a|b' text")


def _distinct(tags: Iterable[str]) -> list[str]:
    """Non-empty tags, each once ("a| a|a" is one tag a)."""
    return list(dict.fromkeys(t for t in tags if t))


def labels_digest(frame: pd.DataFrame) -> str:
    """A fingerprint of labelled rows that does not depend on row order (text, sorted tags, lang)."""
    rows = sorted(
        hashlib.sha256(
            "\0".join([str(t), "|".join(sorted(tags)), str(lang or "")]).encode("utf-8", errors="replace")
        ).hexdigest()
        for t, tags, lang in zip(frame["text"], frame["tags"], frame["lang"], strict=True)
    )
    return hashlib.sha256("".join(rows).encode()).hexdigest()


@dataclass
class LabelledData:
    """Labelled rows and their embeddings, row-aligned.

    Attributes:
        frame: Columns ``id``, ``text``, ``tags`` (list), ``lang`` (str or None), ``group`` (or None).
        embeddings: float32 matrix, one L2-normalised row per frame row (None until embedded).
        sources: Where the rows came from (file paths, ``warehouse:tag_labels``).
        embedder_id: Model id of the encoder that produced ``embeddings``.
        unlabelled: The rows read alongside that carry no tags (``tags`` null), with their embeddings:
            with no labelled row at all, ``feedback tagger train`` self-trains on them
            (:mod:`pipeline.tagging.selftrain`).
    """

    frame: pd.DataFrame
    embeddings: np.ndarray | None = None
    sources: list[str] = field(default_factory=list)
    embedder_id: str | None = None
    unlabelled: LabelledData | None = None

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def texts(self) -> list[str]:
        """The texts, in row order."""
        return self.frame["text"].tolist()

    @property
    def tags(self) -> list[list[str]]:
        """The tag lists, in row order."""
        return self.frame["tags"].tolist()

    @property
    def langs(self) -> list[str | None]:
        """The languages (None where unknown)."""
        return self.frame["lang"].tolist()

    @property
    def groups(self) -> list[str] | None:
        """Cross-validation groups, when every row has one."""
        g = self.frame["group"]
        return None if g.isna().any() else g.astype(str).tolist()

    @property
    def sha256(self) -> str:
        """Order-independent fingerprint of the labelled rows (recorded in a model's manifest)."""
        return labels_digest(self.frame)

    def subset(self, rows: Sequence[int] | np.ndarray) -> LabelledData:
        """The given rows (positions), with their embeddings."""
        idx = np.asarray(rows, dtype=int)
        emb = None if self.embeddings is None else self.embeddings[idx]
        return LabelledData(self.frame.iloc[idx].reset_index(drop=True), emb, self.sources, self.embedder_id)

    def tag_counts(self) -> dict[str, int]:
        """How many rows carry each tag."""
        counts: dict[str, int] = {}
        for tags in self.tags:
            for t in tags:
                counts[t] = counts.get(t, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    @staticmethod
    def concat(parts: Sequence[LabelledData]) -> LabelledData:
        """Stack several labelled sets (all embedded by the same encoder, or none embedded)."""
        if not parts:
            raise FeedbackError("no labelled data: pass at least one file or fill the tag_labels table")
        ids = {p.embedder_id for p in parts}
        if len(ids) > 1:
            raise FeedbackError(f"labelled sets were embedded by different encoders: {sorted(map(str, ids))}")
        frame = pd.concat([p.frame for p in parts], ignore_index=True)
        embs = [p.embeddings for p in parts]
        emb = None if any(e is None for e in embs) else np.concatenate(embs).astype(np.float32)  # type: ignore[arg-type]
        spare = [p.unlabelled for p in parts if p.unlabelled is not None and len(p.unlabelled)]
        unlabelled = LabelledData.concat(spare) if spare else None
        return LabelledData(frame, emb, [s for p in parts for s in p.sources], ids.pop(), unlabelled)


def _optional_str(values: pd.Series) -> list[str | None]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v) for v in values]


def normalise_labels(
    df: pd.DataFrame, what: str, keep_unlabelled: bool = False, prepare: PrepareConfig | None = None
) -> tuple[pd.DataFrame, int]:
    """Check and normalise a labelled frame to :data:`LABEL_COLUMNS` (keeps the original row order).

    The texts become what the nightly run's models see (:func:`pipeline.prepare.model_texts` with the
    run's ``prepare`` options; the defaults when None).

    Returns:
        The frame (only labelled rows unless ``keep_unlabelled``) and the number of unlabelled rows.
    """
    if "text" not in df.columns or "tags" not in df.columns:
        raise missing_columns(
            what,
            ["text", "tags"],
            list(df.columns),
            "Rename the file's columns: text (the answer) and tags (a list or a '|'-separated string).",
        )
    raw = df["tags"]
    # A text column (CSV) cannot tell null from []: an empty cell there means "no tag applies".
    textual = (
        raw.map(lambda v: isinstance(v, str)).any()
        and not raw.map(lambda v: isinstance(v, (list, tuple, np.ndarray))).any()
    )
    tags = [parse_tags(v, empty_is_labelled=bool(textual)) for v in raw]
    if textual:
        tags = [[] if t is None else t for t in tags]
    out = pd.DataFrame(
        {
            "id": df["id"].astype(str).to_numpy() if "id" in df.columns else [str(i) for i in range(len(df))],
            # What the nightly run's models see (normalised, PII-redacted): trained and measured on it.
            "text": model_texts(df["text"].tolist(), prepare),
            "tags": tags,
            "lang": _optional_str(df["lang"]) if "lang" in df.columns else [None] * len(df),
            "group": _optional_str(df["group"]) if "group" in df.columns else [None] * len(df),
        }
    )
    unlabelled = int(sum(t is None for t in tags))
    if not keep_unlabelled:
        out = out[[t is not None for t in tags]]
    return out, unlabelled


def cached_file_embeddings(
    path: Path, texts: list[str], model_id: str, cache_dir: Path | None
) -> np.ndarray | None:
    """Row-aligned embeddings of a whole file from the file cache, when one matches exactly."""
    if cache_dir is None or not cache_dir.exists():
        return None
    for meta_path in sorted(cache_dir.glob(f"*/{path.stem}.meta.json")):
        npy = meta_path.with_name(f"{path.stem}.npy")
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if meta.get("model_id") != model_id or not npy.exists():
            continue
        if meta.get("n_rows") != len(texts) or meta.get("texts_sha256") != texts_digest(texts):
            log.warning("ignoring %s: built for other rows or texts than %s", npy, path)
            continue
        log.info("embeddings of %s read from %s", path.name, npy)
        return np.asarray(np.load(npy), dtype=np.float32)
    return None


def _cache_id(embedder: Embedder) -> str:
    """The id an embedder's vectors are cached under (answer vectors differ from encoder vectors)."""
    return str(getattr(embedder, "cache_id", None) or embedder.model_id)


def write_file_embeddings(
    path: Path, texts: list[str], embedder: Embedder, vectors: np.ndarray, cache_dir: Path, key: str
) -> None:
    """Store a whole file's embeddings in the file cache (atomic rename; readers never see half a file)."""
    out = cache_dir / key
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f"{path.stem}.tmp.npy"
    np.save(tmp, np.ascontiguousarray(vectors, dtype=np.float32))
    tmp.replace(out / f"{path.stem}.npy")
    meta = {
        "model_id": _cache_id(embedder),
        "encoder": key,
        "file": path.stem,
        "n_rows": len(texts),
        "dim": int(vectors.shape[1]),
        "texts_sha256": texts_digest(texts),
        "created_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (out / f"{path.stem}.meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def embed_texts_of_file(
    path: Path,
    texts: list[str],
    embedder: Embedder,
    cache_dir: Path | None,
    cache_key: str | None = None,
    languages: Sequence[str | None] | None = None,
) -> np.ndarray:
    """Embeddings of every text of a file (cache first; computed ones are written to the cache).

    An embedder made of members (``embedder.concat.v1``) is cached member by member, so a member's file
    cache serves it alone and inside any combination. An answer embedder
    (:class:`~pipeline.embed.response.AnswerEmbedder`) is cached under its own ``cache_id`` and splits
    the texts into sentences per ``languages`` (detected when None).
    """
    members = getattr(embedder, "members", None)
    if members:
        parts = [embed_texts_of_file(path, texts, m, cache_dir) for m in members]
        return (np.hstack(parts) / np.sqrt(len(parts))).astype(np.float32)
    cache_id = _cache_id(embedder)
    found = cached_file_embeddings(path, texts, cache_id, cache_dir)
    if found is not None:
        return found
    answers = getattr(embedder, "response_mode", None) is not None
    if not texts:
        vectors = np.zeros((0, embedder.dim), dtype=np.float32)
    elif answers:
        vectors = embedder.embed(texts, languages=languages)  # type: ignore[call-arg]
    else:
        vectors = embedder.embed(texts)
    if cache_dir is not None:
        key = cache_key or cache_id.split("-")[0] + ("+answers" if cache_id != embedder.model_id else "")
        write_file_embeddings(path, texts, embedder, vectors, cache_dir, key)
    return np.asarray(vectors, dtype=np.float32)


def read_labelled_files(
    paths: Sequence[str | Path],
    embedder: Embedder | None = None,
    cache_dir: str | Path | None = None,
    prepare: PrepareConfig | None = None,
) -> LabelledData:
    """Read labelled files (CSV/Parquet) and, given an embedder, their embeddings.

    ``prepare``: the run's text options (:func:`pipeline.prepare.prepare_config_of`), so that models are
    trained on the text the nightly run gives them; the defaults when None.

    Raises:
        SchemaError: naming the file and its columns when ``text`` or ``tags`` is missing.
    """
    cache = Path(cache_dir) if cache_dir else None
    parts: list[LabelledData] = []
    for p in paths:
        path = Path(p)
        raw = read_export(path)
        if "tags" not in raw.columns and "text" in raw.columns:
            log.info("%s has no tags column: every row is unlabelled", path.name)
            raw = raw.assign(tags=None)
        frame, unlabelled = normalise_labels(raw, str(path), keep_unlabelled=True, prepare=prepare)
        labelled = frame["tags"].map(lambda t: t is not None).to_numpy()
        if unlabelled:
            log.info("%s: %d rows without labels (tags null) set aside", path.name, unlabelled)
        emb = None
        if embedder is not None:
            # The cache is row-aligned with the whole file, so embed (or look up) every row, then filter.
            langs = frame["lang"].tolist() if frame["lang"].notna().any() else None
            emb = embed_texts_of_file(path, frame["text"].tolist(), embedder, cache, languages=langs)
        model_id = embedder.model_id if embedder is not None else None
        parts.append(
            LabelledData(
                frame[labelled].reset_index(drop=True),
                None if emb is None else emb[labelled],
                [str(path)],
                model_id,
                LabelledData(
                    frame[~labelled].reset_index(drop=True),
                    None if emb is None else emb[~labelled],
                    [str(path)],
                    model_id,
                )
                if unlabelled
                else None,
            )
        )
    return LabelledData.concat(parts)


def read_label_table(
    wh: Any, table: str = LABEL_TABLE, texts_table: str = "feedback_enriched"
) -> pd.DataFrame:
    """The labelled rows of the warehouse table ``tag_labels`` (empty frame when the table is absent).

    Rows may carry their own ``text``; rows that only name a response (``id`` or ``response_id``) take
    the stored answer's ``text_redacted`` from ``texts_table``. The last label of an id wins.
    """
    if not wh.table_exists(table):
        return pd.DataFrame(columns=LABEL_COLUMNS)
    df = wh.read(table)
    if "id" not in df.columns and "response_id" in df.columns:
        df = df.rename(columns={"response_id": "id"})
    if "labelled_at" in df.columns:
        df = df.sort_values("labelled_at", kind="stable")
    if "id" in df.columns:
        df = df.drop_duplicates("id", keep="last")
    if "text" in df.columns:
        df["text"] = df["text"].where(df["text"].fillna("").astype(str).str.len() > 0, None)
    if ("text" not in df.columns or df["text"].isna().any()) and wh.table_exists(texts_table):
        stored = wh.read(texts_table, ["response_id", "text_redacted"]).rename(columns={"response_id": "id"})
        df = df.merge(stored.astype({"id": str}), on="id", how="left")
        df["text"] = (
            df["text"].fillna(df.pop("text_redacted")) if "text" in df.columns else df.pop("text_redacted")
        )
    frame, _ = normalise_labels(df.reset_index(drop=True), f"warehouse table {table}")
    return frame[frame["text"].str.len() > 0].reset_index(drop=True)


def write_label_table(wh: Any, frame: pd.DataFrame, table: str = LABEL_TABLE, labeller: str = "") -> int:
    """Upsert labelled rows (``id``, ``text``, ``tags``, ``lang``) into ``tag_labels``, keyed by ``id``.

    Rows without a text name a stored answer by ``id``; its text is filled in when labels are read.
    """
    if "text" not in frame.columns and "id" in frame.columns:
        frame = frame.assign(text="")
    norm, _ = normalise_labels(frame, "labels to import")
    if not len(norm):
        return 0
    rows = pd.DataFrame(
        {
            "id": norm["id"].astype(str),
            # An empty text means "the stored answer with this id" (filled in when the labels are read).
            "text": norm["text"].where(norm["text"].str.len() > 0, None),
            "tags": norm["tags"].map(list),
            "lang": norm["lang"].astype(object),
            "labeller": labeller,
            "labelled_at": pd.Timestamp(datetime.now(UTC).replace(tzinfo=None)).as_unit("us"),
        }
    )
    return int(wh.upsert(table, rows, key=["id"]))


def labelled_from_frame(
    frame: pd.DataFrame, source: str, prepare: PrepareConfig | None = None
) -> LabelledData:
    """Wrap an in-memory labelled frame (e.g. from the warehouse) without embeddings."""
    norm, _ = normalise_labels(frame, source, prepare=prepare)
    return LabelledData(norm.reset_index(drop=True), None, [source])


def embed_labelled(data: LabelledData, embedder: Embedder) -> LabelledData:
    """Attach embeddings computed by (a usually cached) embedder."""
    if not len(data):
        emb = np.zeros((0, embedder.dim), dtype=np.float32)
    elif getattr(embedder, "response_mode", None) is not None:  # answers: split per language
        langs = data.langs if any(data.langs) else None
        emb = embedder.embed(data.texts, languages=langs)  # type: ignore[call-arg]
    else:
        emb = embedder.embed(data.texts)
    return LabelledData(data.frame, np.asarray(emb, dtype=np.float32), data.sources, embedder.model_id)
