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
