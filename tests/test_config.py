from pathlib import Path

import pytest

from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.errors import ConfigError


def test_default_config_loads_with_paths_resolved_against_its_folder():
    config = load_config()
    assert Path(config.warehouse).is_absolute()
    assert config.tagger.taxonomy == DEFAULT_CONFIG.parent / "taxonomy.yaml"
    assert config.tables.source == "survey_responses"


def test_unknown_key_is_rejected_with_its_name(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("warehouse: x.duckdb\nbatchsize: 10\n")
    with pytest.raises(ConfigError, match="batchsize"):
        load_config(f)


def test_bad_language_lists_choices(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("languages: [en, xx]\n")
    with pytest.raises(ConfigError, match="choose from"):
        load_config(f)


def test_relative_paths_follow_the_config_file_and_overrides_follow_cwd(tmp_path, monkeypatch):
    f = tmp_path / "sub" / "c.yaml"
    f.parent.mkdir()
    f.write_text("warehouse: wh.duckdb\nstate_dir: state\n")
    config = load_config(f)
    assert config.warehouse == str(tmp_path / "sub" / "wh.duckdb")
    assert config.state_dir == tmp_path / "sub" / "state"
    monkeypatch.chdir(tmp_path)
    assert load_config(f, warehouse="other.duckdb").warehouse == str(tmp_path / "other.duckdb")
    assert load_config(f, warehouse="postgresql+psycopg://u@127.0.0.1/db").warehouse.startswith("postgresql")


def test_missing_file_says_how_to_fix(tmp_path):
    with pytest.raises(ConfigError, match="--config"):
        load_config(tmp_path / "nope.yaml")


def test_lineage_fields_and_languages_have_one_source():
    """The lineage list is declared once (warehouse/tables.py) and is what runs record and rows carry;
    the default languages are declared once (config.py) and are what prepare and the config default to."""
    from types import SimpleNamespace as NS

    from pipeline.config import DEFAULT_LANGUAGES, EnrichmentConfig
    from pipeline.enrich import Models
    from pipeline.prepare import PrepareConfig
    from pipeline.schema import ENRICHED_COLUMNS, RUN_COLUMNS
    from pipeline.warehouse.tables import LINEAGE_KEYS

    models = Models(
        embedder=NS(model_id="e"),
        sentiment=NS(version="s", source="zero_shot"),
        tagger=NS(version="t"),
        taxonomy=NS(version_id="x"),
        topics=NS(version="p"),
    )
    assert tuple(models.versions()) == LINEAGE_KEYS
    for columns in (ENRICHED_COLUMNS, RUN_COLUMNS):
        assert set(LINEAGE_KEYS) <= set(columns)
    assert "run_id" in ENRICHED_COLUMNS
    assert EnrichmentConfig().languages == list(DEFAULT_LANGUAGES)
    assert PrepareConfig().languages == DEFAULT_LANGUAGES


def test_a_missing_optional_package_says_what_needs_it_and_how_to_install_it(monkeypatch):
    import sys

    import pytest

    from pipeline.errors import MissingDependencyError, optional_import
    from pipeline.prepare.language import _import_lingua

    with pytest.raises(MissingDependencyError, match="the demo needs it: pip install nothing"):
        optional_import("no_such_module_for_this_test", "the demo needs it: pip install nothing")
    monkeypatch.setitem(sys.modules, "lingua", None)  # as if lingua were not installed
    with pytest.raises(MissingDependencyError, match="pip install 'lingua-language-detector"):
        _import_lingua()
