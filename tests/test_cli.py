import json

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import build_parser, main


def test_embed_writes_one_vector_per_text(tmp_path, capsys):
    data = tmp_path / "texts.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": ["late parcel", "great staff", None]}).to_csv(
        data, index=False
    )
    assert (
        main(["embed", "--data", str(data), "--out", str(tmp_path / "e.npy"), "--embedder", "hashing"]) == 0
    )
    matrix = np.load(tmp_path / "e.npy")
    assert matrix.shape == (3, 256)
    assert (
        main(["embed", "--data", str(data), "--out", str(tmp_path / "e.parquet"), "--embedder", "hashing"])
        == 0
    )
    frame = pd.read_parquet(tmp_path / "e.parquet")
    assert list(frame["id"]) == ["a", "b", "c"]
    np.testing.assert_allclose(np.stack(frame["embedding"]), matrix)
    assert "3 texts" in capsys.readouterr().out


def test_embed_names_the_missing_text_column(tmp_path, capsys):
    data = tmp_path / "texts.csv"
    pd.DataFrame({"why": ["late"]}).to_csv(data, index=False)
    assert main(["embed", "--data", str(data), "--out", str(tmp_path / "e.npy")]) == 2
    err = capsys.readouterr().err
    assert "'text'" in err and "why" in err and "--text-column" in err


@pytest.mark.parametrize("command", ["demo", "enrich", "serve", "report", "embed"])
def test_contract_commands_exist(command):
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert command in sub.choices
    if command in ("demo", "enrich", "report"):
        assert "--warehouse" in sub.choices[command].format_help()


def test_importing_the_library_loads_no_heavy_framework():
    import subprocess
    import sys

    code = (
        "import sys, pipeline, pipeline.cli, pipeline.runner, pipeline.enrich; "
        "heavy = ('torch', 'transformers', 'bertopic', 'spacy', 'lingua', 'prefect', 'umap', 'hdbscan'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.parametrize(
    "command, extra",
    [
        (["sentiment", "predict", "--model", "default"], ["--out", "o.csv"]),
        (["tagger", "train", "--embedder", "hashing"], ["--out", "tagger_out"]),
        (["topics", "assign"], ["--out", "o.csv"]),
    ],
)
def test_a_missing_input_file_is_one_error_line(command, extra, tmp_path, capsys):
    missing = tmp_path / "nowhere.csv"
    assert main([*command, "--data", str(missing), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "nowhere.csv" in err and "Traceback" not in err


def test_topics_on_too_few_texts_is_one_error_line(tmp_path, capsys):
    data = tmp_path / "few.csv"
    pd.DataFrame({"text": ["late parcel", "great staff", "app crashes"]}).to_csv(data, index=False)
    assert main(["topics", "assign", "--data", str(data), "--out", str(tmp_path / "t.csv")]) == 2
    assert "at least 10 texts, got 3" in capsys.readouterr().err


def test_sentiment_predict_gives_an_empty_answer_no_sentiment(tmp_path):
    data = tmp_path / "in.csv"
    pd.DataFrame(
        {"id": ["a", "b", "c"], "text": ["The staff were lovely.", "", None], "tags": ["staff", "staff", ""]}
    ).to_csv(data, index=False)
    out = tmp_path / "out.parquet"
    assert main(["sentiment", "predict", "--model", "default", "--data", str(data), "--out", str(out)]) == 0
    pred = pd.read_parquet(out).set_index("id")
    assert pred.loc["a", "sentiment_label"] in ("negative", "neutral", "positive", "mixed")
    assert pred.loc[["b", "c"], "sentiment_label"].isna().all()
    assert pred.loc[["b", "c"], "sentiment_score"].isna().all()
    assert list(pred.loc["b", "tag_sentiments"]) == [] and list(pred.loc["a", "tag_sentiments"])


def test_sentiment_reads_the_text_column_it_is_told_and_says_how_when_it_is_missing(tmp_path, capsys):
    data = tmp_path / "export.csv"
    comments = ["The staff were lovely.", "Terrible support, never again.", "ok"]
    pd.DataFrame({"id": ["a", "b", "c"], "comment": comments}).to_csv(data, index=False)
    out = tmp_path / "out.parquet"
    args = ["sentiment", "predict", "--model", "default", "--data", str(data), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "missing column(s) ['text']" in err and "--text-column" in err and "source.columns" not in err
    assert main([*args, "--text-column", "comment"]) == 0
    pred = pd.read_parquet(out).set_index("id")
    reference = tmp_path / "reference.csv"
    pd.DataFrame({"id": ["a", "b", "c"], "text": comments}).to_csv(reference, index=False)
    out_ref = tmp_path / "reference.parquet"
    assert (
        main(["sentiment", "predict", "--model", "default", "--data", str(reference), "--out", str(out_ref)])
        == 0
    )
    expected = pd.read_parquet(out_ref).set_index("id")
    assert pred["sentiment_score"].tolist() == expected["sentiment_score"].tolist()
    assert pred.loc["a", "sentiment_score"] > pred.loc["b", "sentiment_score"]


@pytest.mark.parametrize(
    "command, out",
    [
        (["sentiment", "predict", "--model", "default"], "o.csv"),
        (["sentiment", "train", "--embedder", "hashing"], "s_out"),
        (["tagger", "train", "--embedder", "hashing"], "tagger_out"),
        (["topics", "assign"], "o.csv"),
    ],
)
@pytest.mark.parametrize("content", [b"", b"text,tags\n1;late, and rude;x,y\n"])
def test_an_empty_or_unparsable_file_is_one_error_line(command, out, content, tmp_path, capsys):
    data = tmp_path / "bad.csv"
    data.write_bytes(content)
    assert main([*command, "--data", str(data), "--out", str(tmp_path / out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "bad.csv" in err and len(err.strip().splitlines()) == 1


def test_training_on_empty_texts_says_so(tmp_path, capsys):
    data = tmp_path / "empty_texts.csv"
    pd.DataFrame({"text": ["", None, " "], "tags": ["a", "b", "a"], "sentiment": ["positive"] * 3}).to_csv(
        data, index=False
    )
    for command in (["tagger", "train"], ["sentiment", "train"]):
        args = [*command, "--embedder", "hashing", "--data", str(data), "--out", str(tmp_path / "m")]
        assert main(args) == 2
        assert "no text to learn from" in capsys.readouterr().err


def test_sentiment_evaluate_counts_what_it_cannot_score_and_refuses_to_measure_nothing(tmp_path, capsys):
    data = tmp_path / "odd.csv"
    pd.DataFrame(
        {
            "text": ["Lovely staff.", "Awful, slow and rude.", "", "Fine.", "ok", "meh"],
            "sentiment": ["Positive", " negative ", "negative", "pos", None, "mixed"],
        }
    ).to_csv(data, index=False)
    out = tmp_path / "m.json"
    assert main(["sentiment", "evaluate", "--model", "default", "--data", str(data), "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n"] == 3  # casing and spaces are forgiven; the empty text counts as a wrong answer
    assert result["labels_not_scored"] == {"pos": 1, "(missing)": 1, "mixed": 1}
    assert "labels not scored" in capsys.readouterr().out
    pd.DataFrame({"text": ["Lovely staff."], "why": ["x"]}).to_csv(data, index=False)
    assert main(["sentiment", "evaluate", "--model", "default", "--data", str(data), "--json", str(out)]) == 2
    assert "nothing to measure" in capsys.readouterr().err


def test_topics_evaluate_takes_missing_languages_as_undetermined(tmp_path):
    from pipeline.embed import build_embedder

    data = tmp_path / "t.parquet"
    words = ["late delivery", "rude staff", "app crashes", "great price", "broken item"]
    texts = [f"{w} number {i}" for i in range(8) for w in words]
    pd.DataFrame({"text": texts, "lang": [None if i % 7 == 0 else "en" for i in range(40)]}).to_parquet(data)
    np.save(tmp_path / "e.npy", build_embedder("hashing").embed(texts))
    out = tmp_path / "e.json"
    args = [
        "topics",
        "evaluate",
        "--data",
        str(data),
        "--json",
        str(out),
        "--embeddings",
        str(tmp_path / "e.npy"),
    ]
    assert main([*args, "--no-resample"]) == 0
    assert json.loads(out.read_text())["nmi_lang"] is not None


def test_an_unexpected_error_is_one_line_unless_the_traceback_is_asked_for(monkeypatch, capsys):
    import pipeline.cli as cli

    def boom(args):
        raise KeyError("surprise")

    monkeypatch.setattr(cli, "cmd_report", boom)
    monkeypatch.delenv("FEEDBACK_TRACEBACK", raising=False)
    assert cli.main(["report"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected KeyError: 'surprise'") and "FEEDBACK_TRACEBACK" in err
    assert len(err.strip().splitlines()) == 1
    monkeypatch.setenv("FEEDBACK_TRACEBACK", "1")
    with pytest.raises(KeyError):
        cli.main(["report"])


def test_topics_assign_gives_non_answers_no_topic_as_the_nightly_run_does(tmp_path, capsys):
    from pipeline.embed import build_embedder

    words = ["late delivery", "rude staff", "app crashes", "great price", "broken item"]
    texts = [f"{w} number {i}" for i in range(8) for w in words] + ["", None, "n/a", "🔥🔥", "12345"]
    data = tmp_path / "t.parquet"
    pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts}).to_parquet(data)
    np.save(tmp_path / "e.npy", build_embedder("hashing").embed(["" if t is None else t for t in texts]))
    out = tmp_path / "topics.csv"
    args = [
        "topics",
        "assign",
        "--data",
        str(data),
        "--out",
        str(out),
        "--embeddings",
        str(tmp_path / "e.npy"),
    ]
    assert main(args) == 0
    got = pd.read_csv(out).set_index("id")
    assert len(got) == len(texts)
    non_answers = [f"r{i}" for i in range(40, 45)]
    assert (got.loc[non_answers, "topic_id"] == -1).all() and got.loc[non_answers, "topic_label"].isna().all()
    assert (got.drop(index=non_answers)["topic_id"] >= 0).mean() > 0.5
    assert "5 non-answers without a topic" in capsys.readouterr().out


def test_a_missing_id_stays_missing_in_tagger_predictions_never_the_text_nan(tmp_path):
    train = tmp_path / "train.csv"
    texts = [f"{w} {i}" for i in range(20) for w in ("late delivery parcel", "rude staff member")]
    tags = ["delivery", "staff"] * 20
    pd.DataFrame({"text": texts, "tags": tags}).to_csv(train, index=False)
    model = tmp_path / "tagger"
    assert main(["tagger", "train", "--embedder", "hashing", "--data", str(train), "--out", str(model)]) == 0
    data = tmp_path / "in.parquet"
    pd.DataFrame({"id": ["a", None, "c"], "text": ["late parcel", "rude staff", "late"]}).to_parquet(data)
    out = tmp_path / "out.parquet"
    assert main(["tagger", "predict", "--model", str(model), "--data", str(data), "--out", str(out)]) == 0
    ids = pd.read_parquet(out)["id"].tolist()
    assert ids[0] == "a" and ids[2] == "c"
    assert not isinstance(ids[1], str) and pd.isna(ids[1])  # missing, not "None" or "nan"


@pytest.mark.parametrize(
    "command", [["sentiment", "predict", "--model", "default"], ["topics", "assign"], ["tagger", "suggest"]]
)
def test_an_output_name_of_another_type_is_refused_before_any_work(command, tmp_path, capsys):
    data = tmp_path / "in.csv"
    pd.DataFrame({"text": ["late parcel"]}).to_csv(data, index=False)
    assert main([*command, "--data", str(data), "--out", str(tmp_path / "out.xlsx")]) == 2
    assert "expected a .csv or .parquet file name" in capsys.readouterr().err
    assert not (tmp_path / "out.xlsx").exists()
