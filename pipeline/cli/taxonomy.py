"""``feedback taxonomy draft | check``: write a codeframe without a data scientist (see
:mod:`pipeline.tagging.codeframe`).

* ``draft --warehouse ... --out draft.yaml``: a draft taxonomy from the topics discovered in the warehouse.
* ``check --taxonomy FILE [--warehouse ... | --data FILE] [--json OUT]``: what each tag catches.
"""

from __future__ import annotations

import argparse
import textwrap
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.cli.options import (
    add_config,
    add_config_and_warehouse,
    add_json,
    add_text_column,
    add_warehouse,
    config_of,
    echo,
    write_json,
)
from pipeline.errors import ConfigError


def cmd_draft(args: argparse.Namespace) -> int:
    """Write a draft taxonomy from the stored topics."""
    from pipeline.tagging.codeframe import (
        DRAFT_HEADER,
        draft_tags,
        draft_yaml,
        quotes_by_language,
        read_topic_answers,
        topic_centroids,
    )
    from pipeline.tagging.taxonomy import load_taxonomy
    from pipeline.warehouse.reading import open_for_reading

    out = Path(args.out)
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"--out {out}: expected a .yaml file for the draft taxonomy")
    if out.exists() and not args.force:
        raise ConfigError(f"--out {out} exists: choose another name, or pass --force to overwrite it")
    config = config_of(args)
    with open_for_reading(config.warehouse) as wh:
        topics, answers, vectors = read_topic_answers(wh, config)
        source = wh.describe()
    quotes = quotes_by_language(answers, vectors, per_language=args.examples_per_language)
    centroids = topic_centroids(answers, vectors) if vectors is not None and len(answers) else None
    tags = draft_tags(topics, quotes, centroids, min_size=args.min_size)
    header = DRAFT_HEADER.format(
        n_topics=sum(not t.group for t in tags),
        source=source,
        n_answers=len(answers),
        when=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
    )
    version = args.version or f"draft-{datetime.now(UTC):%Y%m%d}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(draft_yaml(tags, version, header), encoding="utf-8")
    load_taxonomy(out)  # what was written must load as a taxonomy
    groups = sum(t.group for t in tags)
    echo(
        f"draft codeframe: {len(tags) - groups} tags from topics, {groups} suggested parents -> {out}\n"
        f"Edit it (names, one-sentence descriptions, examples), then: feedback taxonomy check --taxonomy {out}"
        + (f" --warehouse {args.warehouse}" if args.warehouse else "")
    )
    return 0


def _check_inputs(args: argparse.Namespace, config: Any, stack: ExitStack) -> tuple[Any, Any]:
    """The answers to check on (``text``, ``lang``, ``is_non_answer``) and the answer embedder (reading the
    warehouse's vector cache, which ``stack`` keeps open, when the answers are the stored ones)."""
    from pipeline.embed import build_embedder
    from pipeline.embed.response import answer_embedder

    encoder = build_embedder(config.embedder.name, **config.embedder.options)
    if args.data:
        import pandas as pd

        from pipeline.ingest.source import read_export
        from pipeline.prepare import is_non_answer, model_texts, prepare_config_of

        df = read_export(args.data)
        if args.text_column not in df.columns:
            raise ConfigError(
                f"{args.data}: no column {args.text_column!r} (found {list(df.columns)}); name the column of "
                "answers with --text-column"
            )
        texts = model_texts(df[args.text_column].tolist(), prepare_config_of(config))
        rows = pd.DataFrame(
            {
                "text": texts,
                "lang": df["lang"].to_numpy() if "lang" in df.columns else None,
                "is_non_answer": [is_non_answer(t) for t in texts],
            }
        )
        return rows, answer_embedder(encoder, config)
    from pipeline.embed.cache import CachedEmbedder
    from pipeline.tagging.codeframe import ReadOnlyStore, read_answers
    from pipeline.warehouse.reading import open_for_reading

    wh = stack.enter_context(open_for_reading(config.warehouse))
    rows = read_answers(wh, config, limit=args.limit)
    return rows, answer_embedder(CachedEmbedder(encoder, ReadOnlyStore(wh)), config)


def cmd_check(args: argparse.Namespace) -> int:
    """Tag the answers with the codeframe and say what each tag catches."""
    from pipeline.tagging.codeframe import check_codeframe, checking_tagger, tag_prototypes
    from pipeline.tagging.evaluation import with_sentence_tags
    from pipeline.tagging.taxonomy import load_taxonomy

    if args.data and args.warehouse:
        raise ConfigError("pass --data FILE or --warehouse (the stored answers), not both")
    config = config_of(args)
    taxonomy = load_taxonomy(args.taxonomy)
    with ExitStack() as stack:
        rows, embedder = _check_inputs(args, config, stack)
        if args.limit:
            rows = rows.head(args.limit)
        keep = ~rows["is_non_answer"].to_numpy(dtype=bool) & (rows["text"].str.strip() != "").to_numpy()
        answers = rows[keep].reset_index(drop=True)
        if answers.empty:
            raise ConfigError(
                f"no answers to check the codeframe on ({len(rows)} rows, all empty or non-answers)"
            )
        texts = answers["text"].tolist()
        langs = (
            None if answers["lang"].isna().all() else [None if v is None else str(v) for v in answers["lang"]]
        )
        tagger = checking_tagger(config, taxonomy, embedder.base)
        emb = embedder.embed(texts, languages=langs)
        tags, scores = tagger.predict(emb, texts=texts)
        tags = with_sentence_tags(tagger, tags, texts, langs, embedder)
        result = check_codeframe(
            taxonomy,
            tagger.version,
            texts,
            tags,
            scores,
            tagger.tag_names_,
            tag_prototypes(taxonomy, embedder.base),
            non_answers=int((~keep).sum()),
            n_examples=args.examples,
        )
    write_json(args.json, result.to_dict(), end="\n", ensure_ascii=False)
    echo(format_check(result))
    return 0


def _quote(text: str, width: int = 100) -> str:
    return '"' + textwrap.shorten(" ".join(text.split()), width=width, placeholder="…") + '"'


def format_check(result: Any) -> str:
    """The check as plain text for the terminal."""
    n = max(result.answers, 1)
    lines = [
        f"codeframe {result.taxonomy_version}: {len(result.tags)} tags, checked on {result.answers:,} answers "
        f"({result.non_answers_left_out:,} non-answers left out) with {result.tagger_version}",
        f"tagged: {result.tagged:,} ({result.tagged / n:.0%}); no tag: {result.untagged:,} ({result.untagged / n:.0%})",
        "",
        f"{'tag':<28} {'answers':>8} {'share':>6}  nearest other tag (similarity): answers with both",
    ]
    for c in sorted(result.tags, key=lambda c: -c.answers):
        near = f"{c.nearest} ({c.similarity:.2f}): {c.overlap}" if c.nearest else "-"
        if c.relation:
            near += f" (its {c.relation})"
        elif c.overlap_share >= 0.5:
            near += f" = {c.overlap_share:.0%} of the smaller: one theme?"
        lines.append(f"{c.name:<28} {c.answers:>8,} {c.share:>6.1%}  {near}")
    if result.never_fire:
        lines += ["", f"never fire ({len(result.never_fire)}): {', '.join(result.never_fire)}"]
        lines.append(
            "  rewrite their descriptions and examples in the words customers use (see the answers below)"
        )
    lines.append("")
    for c in sorted(result.tags, key=lambda c: -c.answers):
        if not c.answers:
            continue
        lines.append(f"{c.name} catches, for example:")
        lines += [f"  + {_quote(t)}" for t in c.examples]
        lines += [f"  ? {_quote(t)}   (borderline)" for t in c.borderline]
    if result.untagged_examples:
        lines += ["", f"answers with no tag ({result.untagged:,}), for example:"]
        lines += [f"  - {_quote(t)}" for t in result.untagged_examples]
    return "\n".join(lines)


def add_taxonomy_commands(subparsers: Any) -> None:
    """Add ``feedback taxonomy draft|check`` to the CLI."""
    g = subparsers.add_parser("taxonomy", help="draft a codeframe from the topics; see what each tag catches")
    sub = g.add_subparsers(dest="taxonomy_command", required=True)

    d = sub.add_parser("draft", help="a draft taxonomy (YAML) from the topics discovered in the warehouse")
    add_config_and_warehouse(d)
    d.add_argument("--out", required=True, help="the draft taxonomy to write (.yaml)")
    d.add_argument("--version", default=None, help="version written in the draft (default draft-YYYYMMDD)")
    d.add_argument("--min-size", type=int, default=5, help="smallest topic drafted as a tag (default 5)")
    d.add_argument(
        "--examples-per-language", type=int, default=2, help="example phrases per language (default 2)"
    )
    d.add_argument("--force", action="store_true", help="overwrite --out when it exists")
    d.set_defaults(func=cmd_draft)

    c = sub.add_parser("check", help="what each tag catches, tags that never fire, answers with no tag")
    c.add_argument("--taxonomy", required=True, help="the taxonomy (codeframe) YAML to check")
    add_config(c, "enrichment YAML (its embedder and tagger settings)")
    add_warehouse(c, "check on the stored answers (default: the config's)")
    c.add_argument("--data", default=None, help="check on a CSV/Parquet file of answers instead")
    add_text_column(c, "the column of answers in --data (default: text)")
    c.add_argument("--limit", type=int, default=None, help="check on at most this many (latest) answers")
    c.add_argument("--examples", type=int, default=3, help="answers shown per tag (default 3)")
    add_json(c, "also write the whole check as JSON here", metavar="OUT")
    c.set_defaults(func=cmd_check)
