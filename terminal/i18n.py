"""Translation catalogues: TOML files per language, looked up by the keys flows put in ``Text``."""

from __future__ import annotations

import logging
import string
import tomllib
from collections.abc import Mapping
from pathlib import Path

from flows.steps import Text

log = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "zh_CN"


class TranslationError(ValueError):
    """A catalogue file is malformed: not TOML, a non-string value, or a key defined twice."""


def _flatten(table: Mapping[str, object], prefix: str, source: str, out: dict[str, str]) -> None:
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            _flatten(value, f"{key}.", source, out)
        elif isinstance(value, str):
            if key in out:
                # Two files of one language defining the same key is a content bug; which one
                # would win depends on file order, so refuse rather than guess.
                raise TranslationError(f"{source}: key {key!r} is defined twice")
            out[key] = value
        else:
            raise TranslationError(f"{source}: key {key!r} must be a string")


def placeholders(template: str) -> frozenset[str]:
    """The ``{name}`` fields a template expects (``{{`` escapes are not fields)."""
    try:
        return frozenset(
            field.split(".")[0].split("[")[0]
            for _, field, _, _ in string.Formatter().parse(template)
            if field
        )
    except ValueError:
        return frozenset()


class _Params(dict[str, str]):
    """Format parameters that leave an unknown ``{name}`` visible instead of raising."""

    def __init__(self, values: Mapping[str, str], key: str, warn: _Warner) -> None:
        super().__init__(values)
        self._key = key
        self._warn = warn

    def __missing__(self, name: str) -> str:
        self._warn(f"missing parameter for translation key {self._key}")
        return "{" + name + "}"


class _Warner:
    """Logs each distinct warning once: the UI re-renders every second while counting down."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def __call__(self, message: str) -> None:
        if message not in self._seen:
            self._seen.add(message)
            log.warning("%s", message)


class Translator:
    """Per-language key -> template tables; ``text`` renders a ``Text`` in a display language."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]]) -> None:
        self._tables: dict[str, dict[str, str]] = {
            lang: dict(table) for lang, table in tables.items()
        }
        self._tables.setdefault(DEFAULT_LANGUAGE, {})
        self._warn = _Warner()

    @classmethod
    def load(
        cls, locales_dir: Path, extra: Mapping[str, Mapping[str, str]] | None = None
    ) -> Translator:
        """Read every ``locales_dir/<lang>/*.toml``; ``extra`` (catalogue texts) wins over them."""
        tables: dict[str, dict[str, str]] = {}
        if locales_dir.is_dir():
            for lang_dir in sorted(p for p in locales_dir.iterdir() if p.is_dir()):
                table: dict[str, str] = {}
                for path in sorted(lang_dir.glob("*.toml")):
                    try:
                        data = tomllib.loads(path.read_text(encoding="utf-8"))
                    except tomllib.TOMLDecodeError as exc:
                        raise TranslationError(f"{path}: {exc}") from exc
                    _flatten(data, "", str(path), table)
                tables[lang_dir.name] = table
        for lang, entries in (extra or {}).items():
            tables.setdefault(lang, {}).update(entries)
        return cls(tables)

    @property
    def languages(self) -> tuple[str, ...]:
        """Every language with a table, the default (zh_CN) first."""
        others = sorted(lang for lang in self._tables if lang != DEFAULT_LANGUAGE)
        return (DEFAULT_LANGUAGE, *others)

    def has(self, key: str, lang: str) -> bool:
        return key in self._tables.get(lang, {})

    def keys(self, lang: str) -> frozenset[str]:
        return frozenset(self._tables.get(lang, {}))

    def text(self, t: Text, lang: str) -> str:
        """Render ``t`` in ``lang``; fall back to zh_CN, then the bare key (logged, no params)."""
        template = self._tables.get(lang, {}).get(t.key)
        if template is None:
            template = self._tables[DEFAULT_LANGUAGE].get(t.key)
            if template is None:
                # Only the key is logged: parameters may carry (masked) personal data.
                self._warn(f"missing translation key {t.key}")
                return t.key
            if lang != DEFAULT_LANGUAGE:
                self._warn(f"translation key {t.key} missing in {lang}, using {DEFAULT_LANGUAGE}")
        if not t.params and "{" not in template:
            return template
        values = {
            name: self.text(value, lang) if isinstance(value, Text) else str(value)
            for name, value in t.params.items()
        }
        try:
            return template.format_map(_Params(values, t.key, self._warn))
        except (ValueError, IndexError, AttributeError, KeyError):
            self._warn(f"malformed template for translation key {t.key}")
            return template

    def problems(self) -> list[str]:
        """Catalogue defects: keys missing from a language, placeholders that differ from zh_CN."""
        found: list[str] = []
        reference = self._tables[DEFAULT_LANGUAGE]
        for lang in self.languages[1:]:
            table = self._tables[lang]
            for key in sorted(reference.keys() - table.keys()):
                found.append(f"{lang}: missing {key}")
            for key in sorted(table.keys() - reference.keys()):
                found.append(f"{lang}: {key} is not in {DEFAULT_LANGUAGE}")
            for key in sorted(reference.keys() & table.keys()):
                if placeholders(reference[key]) != placeholders(table[key]):
                    found.append(f"{lang}: {key} placeholders differ from {DEFAULT_LANGUAGE}")
        return found
