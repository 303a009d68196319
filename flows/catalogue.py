"""The service catalogue (事项目录): which errands a terminal offers, and each one's service guide.

Items are filed under a theme (主题) and a department (部门), both declared at the top of the
content file; each item names the flow that runs it. The terminal loads the content file (TOML)
into a plain dict and hands it to ``parse_catalogue``; the result is immutable. Every display
string comes in every language of ``LANGUAGES``; the UI shows them through
``Catalogue.translations()`` under keys such as ``catalogue.<item id>.title``,
``catalogue.theme.<id>.title`` and ``catalogue.department.<id>.where``, the same way as every
other text. Printed receipts use the ``zh_CN`` strings directly.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from flows.content_table import ContentTable, Localised

LANGUAGES = ("zh_CN", "en")



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
class Theme:
    """A 主题 residents browse by (社会保障, 民政 …); every item belongs to exactly one."""

    id: str
    title: Localised

    @property
    def title_key(self) -> str:
        return f"catalogue.theme.{self.id}.title"


@dataclass(frozen=True)
class Department:
    """The office that decides an item, and ``where`` a resident goes to apply in person."""

    id: str
    name: Localised
    where: Localised

    @property
    def name_key(self) -> str:
        return f"catalogue.department.{self.id}.name"

    @property
    def where_key(self) -> str:
        return f"catalogue.department.{self.id}.where"


@dataclass(frozen=True)
class Centre:
    """A service centre (便民服务中心) where applications are picked up and appointments kept;
    ``id`` is the site id operations know the terminals there by ([terminal] site)."""

    id: str
    name: Localised
    address: Localised

    @property
    def name_key(self) -> str:
        return f"catalogue.centre.{self.id}.name"

    @property
    def address_key(self) -> str:
        return f"catalogue.centre.{self.id}.address"


MAX_COPIES = 9  # more of one paper than this is a typo, and would not fit a checklist line


@dataclass(frozen=True)
class Material:
    """A material (申请材料) and how many originals and copies to bring.

    ``deferrable``: 容缺, the case is taken and the material follows later. ``optional``: only some
    applicants bring it; ``notes`` then says who.
    """

    id: str
    name: Localised
    notes: Localised | None = None
    deferrable: bool = False
    originals: int = 1
    copies: int = 0
    optional: bool = False

    def __post_init__(self) -> None:
        if not (0 <= self.originals <= MAX_COPIES and 0 <= self.copies <= MAX_COPIES):
            raise ValueError(f"material {self.id!r}: counts must be 0..{MAX_COPIES}")
        if self.originals == 0 and self.copies == 0:
            raise ValueError(f"material {self.id!r}: bring at least one original or copy")


@dataclass(frozen=True)
class ServiceGuide:
    """The facts of a 办事指南 a resident needs before coming: all of them at once (一次性告知).

    Where to go is the item's department (``CatalogueItem.department.where``), shared by its items.
    """

    materials: tuple[Material, ...]
    conditions: tuple[Localised, ...]  # 受理条件: who qualifies
    time_limit_working_days: int  # 限时办结, in working days; 0 = 即办件, done on the spot
    fees: Localised
    legal_basis: tuple[Localised, ...]
    guide_url: str  # the full guide online; shown as a QR code to take home


@dataclass(frozen=True)
class CatalogueItem:
    """One errand: the flow that runs it, where it is filed, and its guide (every item has one)."""

    id: str
    kind: ItemKind
    title: Localised
    flow: str  # the flow that runs it from the errand menu ("proof", "guide")
    theme: Theme
    department: Department
    guide: ServiceGuide
    summary: Localised | None = None
    popularity: int | None = None  # rank in the "most used" list, 1 first; None: not listed

    @property
    def title_key(self) -> str:
        return f"catalogue.{self.id}.title"

    def key(self, *parts: str) -> str:
        """The translation key of one of this item's texts: ``key("fees")``."""
        return ".".join(("catalogue", self.id, *parts))


@dataclass(frozen=True)
class Catalogue:
    """Every item a terminal offers, in menu order, and the themes and departments they name."""

    items: tuple[CatalogueItem, ...]
    version: str = ""
    themes: tuple[Theme, ...] = ()
    departments: tuple[Department, ...] = ()
    centres: tuple[Centre, ...] = ()

    def centre(self, centre_id: str) -> Centre | None:
        return next((c for c in self.centres if c.id == centre_id), None)

    def item(self, item_id: str) -> CatalogueItem | None:
        return next((item for item in self.items if item.id == item_id), None)

    def theme(self, theme_id: str) -> Theme | None:
        return next((theme for theme in self.themes if theme.id == theme_id), None)

    def department(self, department_id: str) -> Department | None:
        return next((d for d in self.departments if d.id == department_id), None)

    def items_in_theme(self, theme_id: str) -> tuple[CatalogueItem, ...]:
        """The theme's items in menu order; empty for an unknown theme."""
        return tuple(item for item in self.items if item.theme.id == theme_id)

    def items_of_department(self, department_id: str) -> tuple[CatalogueItem, ...]:
        """The department's items in menu order; empty for an unknown department."""
        return tuple(item for item in self.items if item.department.id == department_id)

    def most_used(self, n: int) -> tuple[CatalogueItem, ...]:
        """At most ``n`` ranked items, most used first; unranked items are never listed."""
        ranked = sorted(
            (item for item in self.items if item.popularity is not None),
            key=lambda item: item.popularity or 0,
        )
        return tuple(ranked[: max(n, 0)])

    def translations(self) -> dict[str, dict[str, str]]:
        """``{lang: {key: text}}`` for every display string, for the UI's translator."""
        tables: dict[str, dict[str, str]] = {lang: {} for lang in LANGUAGES}
        for key, text in self._texts():
            for lang in LANGUAGES:
                tables[lang][key] = text.get(lang)
        return tables

    def _texts(self) -> Iterator[tuple[str, Localised]]:
        for theme in self.themes:
            yield theme.title_key, theme.title
        for department in self.departments:
            yield department.name_key, department.name
            yield department.where_key, department.where
        for centre in self.centres:
            yield centre.name_key, centre.name
            yield centre.address_key, centre.address
        for item in self.items:
            yield item.key("title"), item.title
            if item.summary is not None:
                yield item.key("summary"), item.summary
            guide = item.guide
            yield item.key("fees"), guide.fees
            for number, condition in enumerate(guide.conditions, start=1):
                yield item.key("conditions", str(number)), condition
            for number, basis in enumerate(guide.legal_basis, start=1):
                yield item.key("legal_basis", str(number)), basis
            for material in guide.materials:
                yield item.key("materials", material.id, "name"), material.name
                if material.notes is not None:
                    yield item.key("materials", material.id, "notes"), material.notes


# --- parsing ----------------------------------------------------------------------------------


# Item ids that would share key space with the theme and department tables
# (``catalogue.theme.<id>.title``, ``catalogue.department.<id>.name``).
RESERVED_ITEM_IDS = frozenset({"theme", "department", "centre"})


def parse_catalogue(
    data: Mapping[str, object], *, flows: frozenset[str] | None = None
) -> Catalogue:
    """Build the catalogue from the content file's dict; CatalogueError says what is wrong.

    ``flows``: the flow names the terminal has; given, an item naming another is refused here,
    at start-up, rather than when a resident taps it.
    """
    root = ContentTable("", data, CatalogueError)
    version = root.string("version") if root.has("version") else ""
    themes = tuple(_parse_theme(table) for table in root.tables("themes"))
    _unique(root.at("themes"), [theme.id for theme in themes])
    departments = tuple(_parse_department(table) for table in root.tables("departments"))
    _unique(root.at("departments"), [department.id for department in departments])
    centres = tuple(_parse_centre(table) for table in root.tables("centres", empty=None))
    _unique(root.at("centres"), [centre.id for centre in centres])
    context = _Context(
        themes={theme.id: theme for theme in themes},
        departments={department.id: department for department in departments},
        flows=flows,
    )
    items = tuple(_parse_item(table, context) for table in root.tables("items"))
    root.done()
    _unique(root.at("items"), [item.id for item in items])
    ranked = [(index, item.popularity) for index, item in enumerate(items) if item.popularity]
    for position, (index, rank) in enumerate(ranked):
        if any(rank == other for _, other in ranked[:position]):
            # Two items at one rank would make the "most used" order depend on file order.
            raise CatalogueError(f"items[{index}].popularity", f"rank {rank} appears twice")
    return Catalogue(items=items, version=version, themes=themes, departments=departments,
                     centres=centres)


@dataclass(frozen=True)
class _Context:
    """What an item may refer to: the themes and departments read so far, the known flows."""

    themes: Mapping[str, Theme]
    departments: Mapping[str, Department]
    flows: frozenset[str] | None


def _parse_theme(table: ContentTable) -> Theme:
    theme = Theme(id=table.ident("id"), title=table.localised("title"))
    table.done()
    return theme


def _parse_centre(table: ContentTable) -> Centre:
    centre = Centre(id=table.ident("id"), name=table.localised("name"),
                    address=table.localised("address"))
    table.done()
    return centre


def _parse_department(table: ContentTable) -> Department:
    department = Department(
        id=table.ident("id"), name=table.localised("name"), where=table.localised("where")
    )
    table.done()
    return department


def _parse_item(table: ContentTable, context: _Context) -> CatalogueItem:
    item_id = table.ident("id")
    if item_id in RESERVED_ITEM_IDS:
        raise CatalogueError(table.at("id"), f"{item_id!r} is reserved (it would clash with keys)")
    raw_kind = table.string("kind")
    try:
        kind = ItemKind(raw_kind)
    except ValueError:
        choices = ", ".join(k.value for k in ItemKind)
        raise CatalogueError(table.at("kind"), f"{raw_kind!r} is not one of {choices}") from None
    flow = table.ident("flow")
    if context.flows is not None and flow not in context.flows:
        known = ", ".join(sorted(context.flows))
        raise CatalogueError(table.at("flow"), f"no flow {flow!r} (known: {known})")
    theme_id = table.ident("theme")
    theme = context.themes.get(theme_id)
    if theme is None:
        raise CatalogueError(table.at("theme"), f"no theme {theme_id!r} in [[themes]]")
    department_id = table.ident("department")
    department = context.departments.get(department_id)
    if department is None:
        raise CatalogueError(
            table.at("department"), f"no department {department_id!r} in [[departments]]"
        )
    popularity = table.optional_integer("popularity", default=None, minimum=1, maximum=999)
    item = CatalogueItem(
        id=item_id,
        kind=kind,
        title=table.localised("title"),
        flow=flow,
        theme=theme,
        department=department,
        guide=_parse_guide(table.table("guide")),
        summary=table.optional_localised("summary"),
        popularity=popularity,
    )
    table.done()
    return item


def _parse_guide(table: ContentTable) -> ServiceGuide:
    raw_materials = table.tables(
        "materials", empty="guide with no materials: list every one ([[items.guide.materials]])"
    )
    materials = tuple(_parse_material(material) for material in raw_materials)
    _unique(table.at("materials"), [material.id for material in materials])
    conditions = tuple(
        condition.as_localised()
        for condition in table.tables(
            "conditions", empty="guide with no conditions: say who qualifies"
        )
    )
    legal_basis = tuple(basis.as_localised() for basis in table.tables("legal_basis"))
    guide_url = table.string("guide_url")
    if not guide_url.startswith("https://"):
        # Residents scan this with their phones; a plain-http or relative link is a content bug.
        raise CatalogueError(table.at("guide_url"), "must be an https:// address")
    guide = ServiceGuide(
        materials=materials,
        conditions=conditions,
        # A 承诺件 promised in more than a year is certainly a typo (days instead of hours?).
        time_limit_working_days=table.integer("time_limit_working_days", minimum=0, maximum=250),
        fees=table.localised("fees"),
        legal_basis=legal_basis,
        guide_url=guide_url,
    )
    table.done()
    return guide


def _parse_material(table: ContentTable) -> Material:
    originals = table.optional_integer("originals", default=0, minimum=0, maximum=MAX_COPIES)
    copies = table.optional_integer("copies", default=0, minimum=0, maximum=MAX_COPIES)
    if originals == 0 and copies == 0:
        # A checklist line must say what to bring: "原件1份", "复印件2份", or both.
        raise CatalogueError(table.at("originals"), "give originals or copies (at least one)")
    notes = table.optional_localised("notes")
    optional = table.boolean("optional", default=False)
    if optional and notes is None:
        raise CatalogueError(table.at("notes"), "an optional material needs notes saying who")
    material = Material(
        id=table.ident("id"),
        name=table.localised("name"),
        notes=notes,
        deferrable=table.boolean("deferrable", default=False),
        originals=originals,
        copies=copies,
        optional=optional,
    )
    table.done()
    return material


def _unique(path: str, ids: list[str]) -> None:
    for index, item_id in enumerate(ids):
        if item_id in ids[:index]:
            raise CatalogueError(f"{path}[{index}].id", f"{item_id!r} appears twice")
