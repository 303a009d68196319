"""The service catalogue (事项目录): which errands a terminal offers, and each one's service guide.

The terminal loads the content file (TOML) into a plain dict and hands it to ``parse_catalogue``;
the result is immutable. Every display string comes in every language of ``LANGUAGES``; the UI shows
them through ``Catalogue.translations()`` under keys such as ``catalogue.<item id>.title``, the same
way as every other text. Printed receipts use the ``zh_CN`` strings directly.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

LANGUAGES = ("zh_CN", "en")

# Ids become parts of translation keys and action ids ("errand.<id>"), so keep them to one plain
# segment: no dots, no spaces, nothing a key lookup could split on.
_ID = re.compile(r"^[a-z][a-z0-9_]{0,47}$")


class CatalogueError(ValueError):
    """The content file is wrong; ``path`` says where (``items[1].guide.fees.en``)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


class ItemKind(enum.StrEnum):
    INSTANT = "instant"  # 一证通办: done on the spot with the card (e.g. print a proof)
    APPLICATION = "application"  # 承诺件: the terminal shows the guide; the case is decided later


@dataclass(frozen=True)
class Localised:
    """One display string in every supported language."""

    zh: str  # Simplified Chinese, the ``zh_CN`` text; also what receipts print
    en: str

    def get(self, lang: str) -> str:
        if lang == "zh_CN":
            return self.zh
        if lang == "en":
            return self.en
        raise KeyError(lang)


@dataclass(frozen=True)
class Material:
    """A required material (申请材料); ``deferrable``: 容缺 allowed, may follow after applying."""

    id: str
    name: Localised
    notes: Localised | None = None
    deferrable: bool = False


@dataclass(frozen=True)
class ServiceGuide:
    """The facts of a 办事指南 a resident needs before coming: all of them at once (一次性告知)."""

    materials: tuple[Material, ...]
    time_limit_working_days: int  # 限时办结: promised, in working days
    fees: Localised
    legal_basis: tuple[Localised, ...]
    department: Localised
    guide_url: str  # the full guide online; shown as a QR code to take home


@dataclass(frozen=True)
class CatalogueItem:
    """One errand on the menu. ``guide`` is present exactly for application items."""

    id: str
    kind: ItemKind
    title: Localised
    summary: Localised | None = None
    guide: ServiceGuide | None = None

    @property
    def title_key(self) -> str:
        return f"catalogue.{self.id}.title"

    def key(self, *parts: str) -> str:
        """The translation key of one of this item's texts: ``key("fees")``."""
        return ".".join(("catalogue", self.id, *parts))


@dataclass(frozen=True)
class Catalogue:
    """Every item a terminal offers, in menu order."""

    items: tuple[CatalogueItem, ...]
    version: str = ""

    def item(self, item_id: str) -> CatalogueItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    def translations(self) -> dict[str, dict[str, str]]:
        """``{lang: {key: text}}`` for every display string, for the UI's translator."""
        tables: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        for key, text in self._texts():
            for lang in LANGUAGES:
                tables[lang][key] = text.get(lang)
        return tables

    def _texts(self) -> Iterator[tuple[str, Localised]]:
        for item in self.items:
            yield item.key("title"), item.title
            if item.summary is not None:
                yield item.key("summary"), item.summary
            guide = item.guide
            if guide is None:
                continue
            yield item.key("fees"), guide.fees
            yield item.key("department"), guide.department
            for number, basis in enumerate(guide.legal_basis, start=1):
                yield item.key("legal_basis", str(number)), basis
            for material in guide.materials:
                yield item.key("materials", material.id, "name"), material.name
                if material.notes is not None:
                    yield item.key("materials", material.id, "notes"), material.notes


# --- parsing ----------------------------------------------------------------------------------


class _Table:
    """One TOML table being read: typed getters that name the path, and a typo check at the end."""

    def __init__(self, path: str, value: object) -> None:
        if not isinstance(value, Mapping):
            raise CatalogueError(path, "must be a table")
        self.path = path
        self._data: Mapping[str, object] = value
        self._read: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _get(self, key: str) -> object:
        self._read.add(key)
        if key not in self._data:
            raise CatalogueError(self.at(key), "is missing")
        return self._data[key]

    def has(self, key: str) -> bool:
        self._read.add(key)
        return key in self._data

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value.strip():
            raise CatalogueError(self.at(key), "must be a non-empty string")
        return value.strip()

    def ident(self, key: str) -> str:
        value = self.string(key)
        if not _ID.match(value):
            raise CatalogueError(
                self.at(key), f"{value!r} is not a valid id (lower-case letters, digits, _)"
            )
        return value

    def integer(self, key: str, *, minimum: int, maximum: int) -> int:
        value = self._get(key)
        # bool is an int in Python; "true" working days is a content mistake, not 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise CatalogueError(self.at(key), "must be a whole number")
        if not minimum <= value <= maximum:
            raise CatalogueError(self.at(key), f"must be between {minimum} and {maximum}")
        return value

    def boolean(self, key: str, *, default: bool) -> bool:
        if not self.has(key):
            return default
        value = self._get(key)
        if not isinstance(value, bool):
            raise CatalogueError(self.at(key), "must be true or false")
        return value

    def localised(self, key: str) -> Localised:
        return _localised(_Table(self.at(key), self._get(key)))

    def optional_localised(self, key: str) -> Localised | None:
        return self.localised(key) if self.has(key) else None

    def table(self, key: str) -> _Table:
        return _Table(self.at(key), self._get(key))

    def tables(self, key: str) -> list[_Table]:
        """A non-empty array of tables (``[[items]]``), each named by its index."""
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise CatalogueError(self.at(key), "must be a non-empty list")
        return [_Table(f"{self.at(key)}[{index}]", raw) for index, raw in enumerate(value)]

    def done(self) -> None:
        """Report a key nobody read: almost always a typo that would silently drop content."""
        unknown = sorted(set(self._data) - self._read)
        if unknown:
            raise CatalogueError(self.at(unknown[0]), "unknown key (a typo?)")


def parse_catalogue(data: Mapping[str, object]) -> Catalogue:
    """Build the catalogue from the content file's dict; CatalogueError says what is wrong."""
    root = _Table("", data)
    version = root.string("version") if root.has("version") else ""
    items = tuple(_parse_item(table) for table in root.tables("items"))
    root.done()
    _unique(root.at("items"), [item.id for item in items])
    return Catalogue(items=items, version=version)


def _parse_item(table: _Table) -> CatalogueItem:
    item_id = table.ident("id")
    raw_kind = table.string("kind")
    try:
        kind = ItemKind(raw_kind)
    except ValueError:
        choices = ", ".join(k.value for k in ItemKind)
        raise CatalogueError(table.at("kind"), f"{raw_kind!r} is not one of {choices}") from None
    guide: ServiceGuide | None = None
    if kind is ItemKind.APPLICATION:
        guide = _parse_guide(table.table("guide"))
    elif table.has("guide"):
        raise CatalogueError(table.at("guide"), "only application items have a service guide")
    item = CatalogueItem(
        id=item_id,
        kind=kind,
        title=table.localised("title"),
        summary=table.optional_localised("summary"),
        guide=guide,
    )
    table.done()
    return item


def _parse_guide(table: _Table) -> ServiceGuide:
    materials = tuple(_parse_material(material) for material in table.tables("materials"))
    _unique(table.at("materials"), [material.id for material in materials])
    legal_basis = tuple(_localised(basis) for basis in table.tables("legal_basis"))
    guide_url = table.string("guide_url")
    if not guide_url.startswith("https://"):
        # Residents scan this with their phones; a plain-http or relative link is a content bug.
        raise CatalogueError(table.at("guide_url"), "must be an https:// address")
    guide = ServiceGuide(
        materials=materials,
        # A 承诺件 promised in more than a year is certainly a typo (days instead of hours?).
        time_limit_working_days=table.integer("time_limit_working_days", minimum=1, maximum=250),
        fees=table.localised("fees"),
        legal_basis=legal_basis,
        department=table.localised("department"),
        guide_url=guide_url,
    )
    table.done()
    return guide


def _parse_material(table: _Table) -> Material:
    material = Material(
        id=table.ident("id"),
        name=table.localised("name"),
        notes=table.optional_localised("notes"),
        deferrable=table.boolean("deferrable", default=False),
    )
    table.done()
    return material


def _localised(table: _Table) -> Localised:
    # Every language is required: a missing translation would show a bare key on the glass.
    text = Localised(zh=table.string("zh_CN"), en=table.string("en"))
    table.done()
    return text


def _unique(path: str, ids: list[str]) -> None:
    for index, item_id in enumerate(ids):
        if item_id in ids[:index]:
            raise CatalogueError(f"{path}[{index}].id", f"{item_id!r} appears twice")
