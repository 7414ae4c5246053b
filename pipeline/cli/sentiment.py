"""``feedback sentiment train | evaluate | predict``: the sentiment sub-commands of the CLI.

* ``train --data FILE --out DIR [--from-score]``: fit ``sentiment.embedding_lr.v1`` on labels (or on
  the customers' scores) and save it with its manifest.
* ``evaluate --model DIR|default --data FILE --json OUT``: accuracy, macro_f1, per_lang; aspect_accuracy
  where ``aspect_sentiments`` exist; spearman_score where ``score`` exists.
* ``predict --model DIR|default --data FILE --out FILE``: ``id``, ``sentiment_label``, ``sentiment_score``
  and, when the input has ``tags``, ``tag_sentiments`` ("TAG=polarity" per given tag). An answer whose
  sentences clearly disagree is labelled "mixed", as in the nightly run (sentences split per ``lang``).

``--model`` also accepts a Hugging Face sequence-classification folder, or ``transformers:NAME`` for a
hub model (``sentiment.transformers.v1``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from pipeline.cli.options import (
    add_config,
    add_embedder,
    add_json,
    add_out,
    add_text_column,
    prepare_of,
    write_json,
)
from pipeline.errors import ConfigError


def _embedder_choice(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from pipeline.config import load_config

    if args.embedder:
        return args.embedder, {}
    config = load_config(args.config)
    return config.embedder.name, dict(config.embedder.options)


def _answers(embedder: Any, args: argparse.Namespace) -> Any:
    """The embedder that gives answers the vectors the nightly run gives them (config response_vector)."""
    from pipeline.config import load_config
    from pipeline.embed.response import answer_embedder

    return answer_embedder(embedder, load_config(args.config))


def _load_model(spec: str, args: argparse.Namespace) -> tuple[Any, Any]:
    """The model and the embedder it reads, from ``--model``."""
    from pipeline.embed import build_embedder
    from pipeline.sentiment import PrototypeSentiment, load_sentiment
    from pipeline.sentiment.lifecycle import embedder_for
    from pipeline.sentiment.transformers_backend import TransformersSentiment

    if spec == "default":
        name, options = _embedder_choice(args)
        embedder = build_embedder(name, **options)
        return PrototypeSentiment().fit(embedder), _answers(embedder, args)
    if spec.startswith("transformers:"):
        return TransformersSentiment(spec.split(":", 1)[1]).fit(), None
    from pipeline.model_store import resolve_version_dir

    folder = resolve_version_dir(spec, "sentiment") or Path(spec)
    if (folder / "manifest.json").exists():
        model = load_sentiment(folder)
        embedder = embedder_for(model, _embedder_choice(args))
        return model, None if embedder is None else _answers(embedder, args)
    if (folder / "config.json").exists():
        return TransformersSentiment(str(folder)).fit(), None
    raise ConfigError(
        f"--model {spec!r}: expected 'default', a folder written by `feedback sentiment train` (with "
        "manifest.json), a registry folder (with promoted.json), a Hugging Face model folder (with "
        "config.json) or 'transformers:HUB_NAME'."
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Train and save a sentiment model."""
    from pipeline.embed import build_embedder
    from pipeline.sentiment.lifecycle import embedder_spec, read_labelled, train_on_frame

    name, options = _embedder_choice(args)
    df = read_labelled(args.data, prepare_of(args), args.text_column)
    params: dict[str, Any] = {"cv_folds": args.cv_folds}
    if args.members:
        params["members"] = tuple(m.strip() for m in args.members.split(","))
    t0 = time.perf_counter()
    embedder = _answers(build_embedder(name, **options), args)
    model = train_on_frame(df, embedder, embedder_spec(name, options), from_score=args.from_score, **params)
    out = model.save(args.out)
    manifest = model.manifest()
    metrics = manifest["metrics"]
    of = f" of {len(df)}" if metrics["n_train"] != len(df) else ""
    pruned = (
        f", {metrics['n_pruned']} whose text disagrees with their score left out"
        if metrics.get("n_pruned")
        else ""
    )
    print(
        f"trained {manifest['version']} on {metrics['n_train']}{of} rows "
        f"(source: {manifest['mode']}{pruned}, {time.perf_counter() - t0:,.0f}s) -> {out}"
    )
    if "cv_macro_f1_tuned" in manifest["metrics"]:
        print(f"  cross-validated macro F1 on the training file: {manifest['metrics']['cv_macro_f1_tuned']}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluate a model on a labelled file and write the metrics as JSON."""
    from pipeline.sentiment.lifecycle import evaluate_frame, read_labelled

    model, embedder = _load_model(args.model, args)
    result = evaluate_frame(model, read_labelled(args.data, prepare_of(args), args.text_column), embedder)
    result["data"] = str(args.data)
    write_json(args.json, result)
    shown = {
        k: result[k]
        for k in ("n", "accuracy", "macro_f1", "aspect_n", "aspect_accuracy", "score_n", "spearman_score")
        if k in result
    }
    skipped = result.get("labels_not_scored")
    note = f"; labels not scored: {skipped}" if skipped else ""
    print(
        f"{model.version} ({result['sentiment_source']}) on {result['n_rows']} rows: {shown}{note} -> {args.json}"
    )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict sentiment for a file and write id, label, score (and tag_sentiments)."""
    from pipeline.ingest.source import check_output_path
    from pipeline.sentiment.lifecycle import predict_frame, read_labelled

    check_output_path(args.out)
    model, embedder = _load_model(args.model, args)
    df = read_labelled(args.data, prepare_of(args), args.text_column)
    pred = predict_frame(model, df, embedder)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix.lower() == ".csv":
        if "tag_sentiments" in pred.columns:
            pred = pred.assign(tag_sentiments=pred["tag_sentiments"].map("|".join))
        pred.to_csv(out, index=False)
    else:
        pred.to_parquet(out, index=False)
    counts = pred["sentiment_label"].value_counts().to_dict()
    print(f"{len(pred)} rows -> {out} ({model.version}; {counts})")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Gate a version against the promoted one (or the zero-shot default when none is) on --data, and
    promote it: Spearman with the file's scores and/or macro F1 on its labels."""
    from pipeline.cli.store import report_decision, store_of
    from pipeline.sentiment.lifecycle import evaluate_frame, read_labelled

    df = read_labelled(args.data, prepare_of(args), args.text_column)
    candidate, embedder = _load_model(args.model, args)
    reports = {"candidate": evaluate_frame(candidate, df, embedder)}
    with store_of(args, "sentiment") as store:
        current_dir = store.promoted_path()
        current, cur_embedder = _load_model(str(current_dir) if current_dir else "default", args)
        reports["current"] = evaluate_frame(current, df, cur_embedder)
        decision = store.promote(
            args.model,
            _gate_metrics(reports["candidate"]),
            _gate_metrics(reports["current"]),
            force=args.force,
            max_drop=args.max_drop,
            evaluation={"data": str(args.data), "rows": len(df), "against": current.version},
        )
    return report_decision(decision, reports, args.json)


def _gate_metrics(report: dict[str, Any]) -> dict[str, Any]:
    return {k: report[k] for k in ("macro_f1", "spearman_score") if report.get(k) is not None}


def add_sentiment_commands(subparsers: Any) -> None:
    """Add ``feedback sentiment train|evaluate|predict|promote|list`` to the CLI's sub-parsers."""
    s = subparsers.add_parser("sentiment", help="train, evaluate and apply sentiment models")
    sub = s.add_subparsers(dest="sentiment_command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        add_config(sp, "enrichment YAML (its embedder is the default)")
        add_embedder(sp)
        sp.add_argument("--data", required=True, help="CSV/Parquet file with a text column")
        add_text_column(sp, "the column of texts (default: text)")

    t = sub.add_parser("train", help="train sentiment.embedding_lr.v1 on labels or scores")
    common(t)
    t.add_argument("--out", required=True, help="model folder to write")
    t.add_argument(
        "--from-score",
        action="store_true",
        help="learn from the customers' scores (score + score_scale or survey_type) instead of labels",
    )
    t.add_argument(
        "--members", default=None, help="ensemble members, e.g. 'embedding' or 'embedding,text,fused'"
    )
    t.add_argument(
        "--cv-folds", type=int, default=3, help="folds for bias tuning / noise filtering (default 3)"
    )
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="metrics of a model on a labelled file (JSON)")
    common(e)
    e.add_argument("--model", required=True, help="model folder, 'default', HF folder or transformers:NAME")
    add_json(e, "write the metrics here", required=True)
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="sentiment of every row of a file")
    common(p)
    p.add_argument("--model", required=True, help="model folder, 'default', HF folder or transformers:NAME")
    add_out(p)
    p.set_defaults(func=cmd_predict)

    from pipeline.cli.store import add_list_command, add_promote_options

    m = sub.add_parser(
        "promote", help="gate a version against the promoted one (macro F1 / Spearman on --data), promote it"
    )
    common(m)
    m.add_argument("--model", required=True, help="candidate model folder")
    add_promote_options(m, "sentiment")
    m.set_defaults(func=cmd_promote)
    add_list_command(sub, "sentiment")
