"""``feedback topics ...``: assign, evaluate, show, promote and list topic models (the measuring itself is
:mod:`pipeline.topics.evaluation`).

Input files have the columns of ``../shared/data/README.md``: ``text``, optionally ``id``, ``lang`` and
``tags`` (a list or a "|"-separated string). Embeddings come from the config's embedder, or from a
row-aligned ``.npy`` given with ``--embeddings`` (nothing is encoded then).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.cli.options import (
    add_config,
    add_embeddings,
    add_json,
    add_out,
    add_text_column,
    echo,
    prepare_of,
    write_json,
)
from pipeline.errors import FeedbackError
from pipeline.topics.evaluation import assign_topic_ids, evaluate_topics, fit_topic_model, read_topic_data

log = logging.getLogger("feedback.topics")


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


def _topic_options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from pipeline.config import load_config

    config = load_config(args.config)
    name = args.model_name or config.topics.name
    options: dict[str, Any] = {"languages": config.languages, **config.topics.options}
    options["seed"] = args.seed
    return name, options


def cmd_topics_assign(args: argparse.Namespace) -> int:
    """Fit topics on a file (or load a saved model) and write id, topic_id, topic_label."""
    from pipeline.ingest.source import check_output_path
    from pipeline.prepare import is_non_answer
    from pipeline.topics import BERTopicModel

    check_output_path(args.out)
    data = read_topic_data(args.data, args.text_column, prepare_of(args))
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
        model = fit_topic_model(name, options, texts, emb[rows], row_langs)
        if args.save_model:
            _save_version(model, args, texts, emb[rows], row_langs)
    ids = np.full(len(data), -1, dtype=int)
    if len(rows):
        ids[rows] = assign_topic_ids(model, emb[rows], row_langs)
    out = pd.DataFrame({"id": data["id"], "topic_id": ids, "topic_label": model.labels(ids)})
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    echo(
        f"{len(out)} rows -> {path}: {len(model.topic_table())} topics, "
        f"{(ids[rows] == -1).mean() if len(rows) else 0:.1%} outliers among the answers, "
        f"{len(data) - len(rows)} non-answers without a topic (model {model.version})"
    )
    return 0


def _save_version(
    model: Any, args: argparse.Namespace, texts: list[str], emb: np.ndarray, langs: Any
) -> None:
    """Write a fitted model as a model-store version folder (promotable with ``topics promote``)."""
    from pipeline.topics.versions import gate_metrics

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
    from pipeline.cli.store import report_decision, store_of
    from pipeline.config import load_config
    from pipeline.model_store import read_manifest
    from pipeline.topics import BERTopicModel
    from pipeline.topics.versions import gate_metrics, resample_labels

    with store_of(args, "topics") as store:
        candidate = Path(args.model)
        if not (candidate / "manifest.json").exists():
            candidate = store.path(args.model)  # a version id of the store
        current_dir = store.promoted_path()
        if args.data:
            data = read_topic_data(args.data, args.text_column, prepare_of(args))
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
    data = read_topic_data(args.data, args.text_column, prepare_of(args))
    emb = _embeddings(
        args, data["text"].tolist(), data["lang"].tolist() if data["lang"] is not None else None
    )
    name, options = _topic_options(args)
    result = evaluate_topics(data, emb, name, options, seed=args.seed, resample=not args.no_resample)
    result["data"] = str(args.data)
    write_json(args.json, result)
    echo(json.dumps(result, indent=2))
    return 0


def cmd_topics_show(args: argparse.Namespace) -> int:
    """Print a saved model's topics: label, size, suggested tag and a quote."""
    from pipeline.topics import BERTopicModel

    table = BERTopicModel.load(args.model).topic_table()
    for row in table.to_dict("records"):
        quotes = row.get("representative_quotes") or []
        echo(f"{row['topic_id']:>4}  {row['size']:>6}  {row['label']}")
        if quotes:
            echo(f'        "{quotes[0][:100]}"')
    return 0


def add_topics_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``feedback topics assign|evaluate|show|promote|list`` on the CLI's sub-parsers."""
    top = subparsers.add_parser("topics", help="assign, evaluate and show topics of a file")
    sub = top.add_subparsers(dest="topics_command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--data", required=True, help="CSV/Parquet file (text; id, lang, tags optional)")
        add_config(sp, "enrichment YAML (embedder, topic model and options)")
        sp.add_argument("--seed", type=int, default=42, help="seed (the stable model does not depend on it)")
        add_text_column(sp)
        add_embeddings(sp)
        sp.add_argument(
            "--model-name", default=None, help="registered topic model (default: the config's topics.name)"
        )

    a = sub.add_parser("assign", help="fit on the file (or load --model) and write id, topic_id, topic_label")
    common(a)
    add_out(a)
    a.add_argument("--model", default=None, help="a saved model folder to assign with instead of fitting")
    a.add_argument(
        "--save-model", default=None, help="also save the fitted model as a version folder (topics promote)"
    )
    a.set_defaults(func=cmd_topics_assign)

    e = sub.add_parser("evaluate", help="outliers, stability ARI, NMI with tags and language -> JSON")
    common(e)
    add_json(e, "write the metrics here", required=True)
    e.add_argument("--no-resample", action="store_true", help="skip the two 80%% resample fits")
    e.set_defaults(func=cmd_topics_evaluate)

    s = sub.add_parser("show", help="print a saved model's topics")
    s.add_argument("--model", required=True, help="a saved model folder")
    s.set_defaults(func=cmd_topics_show)

    from pipeline.cli.store import add_list_command, add_promote_options

    m = sub.add_parser(
        "promote", help="gate a version against the promoted one (outliers, stability ARI, NMI with tags)"
    )
    m.add_argument("--model", required=True, help="a version folder, or a version id of the store")
    m.add_argument(
        "--data", default=None, help="evaluation file (default: compare the versions' own metrics)"
    )
    add_text_column(m)
    add_embeddings(m)
    add_promote_options(m, "topics")
    m.set_defaults(func=cmd_topics_promote)
    add_list_command(sub, "topics")
