"""The theme taxonomy: tags with descriptions, multilingual examples and an optional parent."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.errors import ConfigError

ANY_LANGUAGE = "*"
"""Language key of keyword rules that apply to every language (see :mod:`pipeline.tagging.rules`)."""
_LANGUAGE = re.compile(r"[a-z]{2}")


class Tag(BaseModel):
    """One theme of the taxonomy."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = Field(min_length=3)
    examples: list[str] = Field(default_factory=list)
    parent: str | None = None
    polarity: Literal["negative", "positive", "neutral"] = "neutral"
    threshold: float | None = Field(None, ge=-1, le=1)
    keywords: dict[str, list[str]] = Field(default_factory=dict)
    patterns: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("examples")
    @classmethod
    def _strip(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value if v and v.strip()]

    @field_validator("keywords", "patterns", mode="before")
    @classmethod
    def _per_language(cls, value: object) -> object:
        """A plain list applies to every language ("*"); a mapping is ``{language: [entries]}``."""
        if value is None:
            return {}
        if isinstance(value, (list, tuple)):
            return {ANY_LANGUAGE: list(value)}
        if isinstance(value, str):
            raise ValueError(
                f"expected a list of entries or {{language: [entries]}}, got the text {value!r}: "
                "write it as a list, e.g. [refund, chargeback]"
            )
        return value

    @field_validator("keywords", "patterns")
    @classmethod
    def _languages(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        bad = sorted(k for k in value if k != ANY_LANGUAGE and not _LANGUAGE.fullmatch(k))
        if bad:
            raise ValueError(
                f"language keys {bad} are not ISO 639-1 codes: use two lower-case letters (en, pt, ...) "
                f"or '{ANY_LANGUAGE}' for every language"
            )
        return {k: [e.strip() for e in v if e and e.strip()] for k, v in value.items()}

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        for lang, entries in value.items():
            for entry in entries:
                try:
                    re.compile(entry)
                except re.error as exc:
                    raise ValueError(
                        f"pattern {entry!r} ({lang}) is not a valid regular expression ({exc}): escape "
                        "special characters with a backslash, or list the phrase under keywords"
                    ) from None
        return value


class Taxonomy(BaseModel):
    """A versioned list of tags; parents must exist and names must be unique."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    tags: list[Tag] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> Taxonomy:
        names = [t.name for t in self.tags]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate tag names: {dupes}")
        missing = sorted({t.parent for t in self.tags if t.parent and t.parent not in names})
        if missing:
            raise ValueError(f"parent(s) {missing} are not tags of the taxonomy; add them or fix the names")
        return self

    @property
    def names(self) -> list[str]:
        """Tag names in taxonomy order."""
        return [t.name for t in self.tags]

    def parent_of(self, name: str) -> str | None:
        """The parent tag of ``name`` (None for top-level tags)."""
        return {t.name: t.parent for t in self.tags}.get(name)

    def ancestors(self, name: str) -> list[str]:
        """All ancestors of a tag, nearest first."""
        out: list[str] = []
        parent = self.parent_of(name)
        while parent and parent not in out:
            out.append(parent)
            parent = self.parent_of(parent)
        return out

    @property
    def fingerprint(self) -> str:
        """A short hash of the content (changes when any description or example changes)."""
        data = self.model_dump(mode="json")
        for tag in data["tags"]:
            # Empty rule fields are left out, so a codeframe without rules keeps the fingerprint it had
            # before rules existed (stored rows and trained versions still match it).
            for key in ("keywords", "patterns"):
                if not tag[key]:
                    del tag[key]
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()

    @property
    def version_id(self) -> str:
        """Version plus content fingerprint, recorded on every enriched row."""
        return f"{self.version}+{self.fingerprint}"


def load_taxonomy(path: str | Path) -> Taxonomy:
    """Load and validate a taxonomy YAML file.

    Raises:
        ConfigError: naming the file and the problem.
    """
    file = Path(path)
    if not file.exists():
        raise ConfigError(
            f"Taxonomy file {file} not found. Set tagger.taxonomy in the enrichment config; a relative path "
            "there is read from the config file's own folder (a copy of configs/enrichment.yaml kept "
            "elsewhere needs the path from its own folder, e.g. /path/to/repo/configs/taxonomy.yaml)."
        )
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
        return Taxonomy.model_validate(raw)
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"Taxonomy {file} is invalid: {exc}") from exc
