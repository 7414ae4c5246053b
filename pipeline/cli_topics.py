"""``feedback topics ...``: assign, evaluate and show topic models on a CSV/Parquet file.

Input files have the columns of ``../shared/data/README.md``: ``text``, optionally ``id``, ``lang`` and
``tags`` (a list or a "|"-separated string). Embeddings come from the config's embedder, or from a
row-aligned ``.npy`` given with ``--embeddings`` (nothing is encoded then).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.errors import FeedbackError

log = logging.getLogger("feedback.topics")


def _out(message: str) -> None:
    sys.stdout.write(message + "\n")


def _tag_list(value: object) -> list[str] | None:
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
    from pipeline.prepare import is_missing, model_texts
    from pipeline.source import file_ids, read_export

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
            "tags": df["tags"].map(_tag_list) if "tags" in df.columns else None,
        }
    )


def _embeddings(args: argparse.Namespace, texts: list[str], langs: list[str] | None = None) -> np.ndarray:
    if args.embeddings:
        emb = np.load(args.embeddings, mmap_mode="r")
        if emb.shape[0] != len(texts):
            raise FeedbackError(
                f"--embeddings {args.embeddings} has {emb.shape[0]} rows, the data has {len(texts)}; "
                "they must be row-aligned."
            )
        return np.asarray(emb, dtype=np.float32)
    from pipeline.config import load_config
    from pipeline.embed import build_embedder
    from pipeline.embed.response import answer_embedder

    config = load_config(args.config)
    embedder = build_embedder(config.embedder.name, **config.embedder.options)
    # Answers' vectors as the nightly run makes them (topics are fitted on those).
    return answer_embedder(embedder, config).embed(texts, languages=langs)


def _prepare(args: argparse.Namespace) -> Any:
    """The run's text options from ``--config`` (files are prepared as the nightly run prepares answers)."""
    from pipeline.config import load_config
    from pipeline.prepare import prepare_config_of

    return prepare_config_of(load_config(args.config))


def _topic_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from pipeline.config import load_config

    config = load_config(args.config)
    name = args.model_name or config.topics.name
    options: dict[str, Any] = {"languages": config.languages, **config.topics.options}
    options["seed"] = args.seed
    return name, options


def _fit(
    name: str,
    options: dict[str, Any],
    texts: list[str],
    emb: np.ndarray,
    langs: list[str] | None,
    previous: Any = None,
) -> Any:
    from pipeline.topics import build_topics, fit_topics

    return fit_topics(build_topics(name, **options), texts, emb, langs, previous)


def _assign(model: Any, emb: np.ndarray, langs: list[str] | None) -> np.ndarray:
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
    model = _fit(name, options, texts, emb, langs)
    seconds = time.perf_counter() - t0
    first = _assign(model, emb, langs)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(texts))
    second_model = _fit(
        name,
        {**options, "seed": seed + 1},
        [texts[i] for i in order],
        emb[order],
        [langs[i] for i in order] if langs else None,
    )
    second = _assign(second_model, emb, langs)
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
            return _fit(name, {**options, "seed": seed + 2 + k}, sub_texts, emb[rows], sub_langs, previous)

        first_fit = fit_on(samples[0], 0)
        base = _assign(first_fit, emb, langs)
        result["resample_ari"] = round(float(ari(base, _assign(fit_on(samples[1], 1), emb, langs))), 4)
        warm = fit_on(samples[1], 1, previous=first_fit)
        result["refit_ari"] = round(float(ari(base, _assign(warm, emb, langs))), 4)
    result["seconds"] = round(seconds, 2)
    return result


def cmd_topics_assign(args: argparse.Namespace) -> int:
    """Fit topics on a file (or load a saved model) and write id, topic_id, topic_label."""
    from pipeline.prepare import is_non_answer
    from pipeline.source import check_output_path
    from pipeline.topics import BERTopicModel

    check_output_path(args.out)
    data = read_topic_data(args.data, args.text_column, _prepare(args))
    langs = data["lang"].tolist() if data["lang"] is not None else None
    emb = _embeddings(args, data["text"].tolist(), langs)
    # As in the nightly run: empty answers and non-answers ("n/a", emoji only...) get no topic (-1) and
    # take no part in the fit.
    answered = np.array([not is_non_answer(t) for t in data["text"]], dtype=bool)
    rows = np.flatnonzero(answered)
    texts = [data["text"].iloc[i] for i in rows]
    row_langs = [langs[i] for i in rows] if langs is not None else None
    if args.model:
        model = BERTopicModel.load(args.model)
    else:
        name, options = _topic_options(args)
        model = _fit(name, options, texts, emb[rows], row_langs)
        if args.save_model:
            _save_version(model, args, texts, emb[rows], row_langs)
    ids = np.full(len(data), -1, dtype=int)
    if len(rows):
        ids[rows] = _assign(model, emb[rows], row_langs)
    out = pd.DataFrame({"id": data["id"], "topic_id": ids, "topic_label": model.labels(ids)})
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    _out(
        f"{len(out)} rows -> {path}: {len(model.topic_table())} topics, "
        f"{(ids[rows] == -1).mean() if len(rows) else 0:.1%} outliers among the answers, "
        f"{len(data) - len(rows)} non-answers without a topic (model {model.version})"
    )
    return 0


def _save_version(
    model: Any, args: argparse.Namespace, texts: list[str], emb: np.ndarray, langs: Any
) -> None:
    """Write a fitted model as a model-store version folder (promotable with ``topics promote``)."""
    from pipeline.topic_versions import gate_metrics

    if args.embeddings:
        encoder: dict[str, Any] = {"model_id": None, "embeddings_file": str(args.embeddings)}
    else:
        from pipeline.config import load_config
        from pipeline.embed import build_embedder
        from pipeline.tagging.lifecycle import encoder_spec

        config = load_config(args.config)
        embedder = build_embedder(config.embedder.name, **config.embedder.options)
        encoder = {
            **encoder_spec(config.embedder.name, config.embedder.options, embedder),
            "response_vector": config.response_vector,
        }
    metrics = gate_metrics(model, emb, langs, None)
    model.save_version(args.save_model, encoder, metrics, {"rows": len(texts), "data": str(args.data)})


def cmd_topics_promote(args: argparse.Namespace) -> int:
    """Gate a topic model version against the promoted one (on --data, or their own metrics) and promote."""
    from pipeline.cli_store import report_decision, store_of
    from pipeline.config import load_config
    from pipeline.model_store import read_manifest
    from pipeline.topic_versions import gate_metrics, resample_labels
    from pipeline.topics import BERTopicModel

    with store_of(args, "topics") as store:
        candidate = Path(args.model)
        if not (candidate / "manifest.json").exists():
            candidate = store.path(args.model)  # a version id of the store
        current_dir = store.promoted_path()
        if args.data:
            data = read_topic_data(args.data, args.text_column, _prepare(args))
            langs = data["lang"].tolist() if data["lang"] is not None else None
            emb = _embeddings(args, data["text"].tolist(), langs)
            tags = data["tags"].tolist() if data["tags"] is not None else None
            reference = resample_labels(load_config(args.config), data["text"].tolist(), emb, langs)
            reports = {"candidate": gate_metrics(BERTopicModel.load(candidate), emb, langs, tags, reference)}
            if current_dir is not None:
                reports["current"] = gate_metrics(
                    BERTopicModel.load(current_dir), emb, langs, tags, reference
                )
            evaluation = {"data": str(args.data), "rows": len(data)}
        else:
            log.warning("no --data: comparing the versions' own metrics (measured on different windows)")
            reports = {"candidate": read_manifest(candidate, "topics")["metrics"]}
            if current_dir is not None:
                reports["current"] = read_manifest(current_dir, "topics")["metrics"]
            evaluation = {"kind": "metrics of each manifest"}
        decision = store.promote(
            candidate,
            reports["candidate"],
            reports.get("current"),
            force=args.force,
            max_drop=args.max_drop,
            evaluation=evaluation,
        )
    return report_decision(decision, reports, args.json)


def cmd_topics_evaluate(args: argparse.Namespace) -> int:
    """Outlier share, stability across seeds and order, NMI with human themes and with language."""
    data = read_topic_data(args.data, args.text_column, _prepare(args))
    emb = _embeddings(
        args, data["text"].tolist(), data["lang"].tolist() if data["lang"] is not None else None
    )
    name, options = _topic_options(args)
    result = evaluate_topics(data, emb, name, options, seed=args.seed, resample=not args.no_resample)
    result["data"] = str(args.data)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    _out(json.dumps(result, indent=2))
    return 0


def cmd_topics_show(args: argparse.Namespace) -> int:
    """Print a saved model's topics: label, size, suggested tag and a quote."""
    from pipeline.topics import BERTopicModel

    table = BERTopicModel.load(args.model).topic_table()
    for row in table.to_dict("records"):
        quotes = row.get("representative_quotes") or []
        _out(f"{row['topic_id']:>4}  {row['size']:>6}  {row['label']}")
        if quotes:
            _out(f'        "{quotes[0][:100]}"')
    return 0


def add_topics_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``feedback topics assign|evaluate|show|promote|list`` on the CLI's sub-parsers."""
    top = subparsers.add_parser("topics", help="assign, evaluate and show topics of a file")
    sub = top.add_subparsers(dest="topics_command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data", required=True, help="CSV/Parquet file (text; id, lang, tags optional)")
        sp.add_argument("--config", default=None, help="enrichment YAML (embedder, topic model and options)")
        sp.add_argument("--seed", type=int, default=42, help="seed (the stable model does not depend on it)")
        sp.add_argument("--text-column", default="text")
        sp.add_argument("--embeddings", default=None, help="row-aligned .npy of the file's embeddings")
        sp.add_argument(
            "--model-name", default=None, help="registered topic model (default: the config's topics.name)"
        )

    a = sub.add_parser("assign", help="fit on the file (or load --model) and write id, topic_id, topic_label")
    common(a)
    a.add_argument("--out", required=True, help="output .parquet or .csv")
    a.add_argument("--model", default=None, help="a saved model folder to assign with instead of fitting")
    a.add_argument(
        "--save-model", default=None, help="also save the fitted model as a version folder (topics promote)"
    )
    a.set_defaults(func=cmd_topics_assign)

    e = sub.add_parser("evaluate", help="outliers, stability ARI, NMI with tags and language -> JSON")
    common(e)
    e.add_argument("--json", required=True, help="write the metrics here")
    e.add_argument("--no-resample", action="store_true", help="skip the two 80%% resample fits")
    e.set_defaults(func=cmd_topics_evaluate)

    s = sub.add_parser("show", help="print a saved model's topics")
    s.add_argument("--model", required=True, help="a saved model folder")
    s.set_defaults(func=cmd_topics_show)

    from pipeline.cli_store import add_list_command, add_promote_options

    m = sub.add_parser(
        "promote", help="gate a version against the promoted one (outliers, stability ARI, NMI with tags)"
    )
    m.add_argument("--model", required=True, help="a version folder, or a version id of the store")
    m.add_argument(
        "--data", default=None, help="evaluation file (default: compare the versions' own metrics)"
    )
    m.add_argument("--text-column", default="text")
    m.add_argument("--embeddings", default=None, help="row-aligned .npy of the file's embeddings")
    add_promote_options(m, "topics")
    m.set_defaults(func=cmd_topics_promote)
    add_list_command(sub, "topics")
