"""The application items (承诺件) the simulated hub accepts, read from the terminal's catalogue.

The hub and the terminal must agree on what an item needs, so the simulated hub takes its items
from the very content file the terminal ships (``terminal/content/catalogue.toml``): every item of
kind ``application``, its department (which decides who processes it), its time limit in working
days and its materials (which may be deferred under 容缺, which are optional). Instant errands
stay in ``hub_records``; they are run, not submitted.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from flows.catalogue import ItemKind, parse_catalogue

SHIPPED_CATALOGUE = Path(__file__).resolve().parents[1] / "terminal" / "content" / "catalogue.toml"


@dataclass(frozen=True)
class MaterialRule:
    """What the hub requires of one material: present unless optional; deferred only if allowed."""

    material_id: str
    deferrable: bool = False
    optional: bool = False


@dataclass(frozen=True)
class ApplicationItem:
    """An item a resident can lodge at the terminal, as the hub sees it."""

    item_id: str
    title: str  # zh_CN, as printed
    department_id: str
    time_limit_working_days: int
    materials: tuple[MaterialRule, ...]

    def material(self, material_id: str) -> MaterialRule | None:
        return next((m for m in self.materials if m.material_id == material_id), None)


def load_items(path: Path = SHIPPED_CATALOGUE) -> Mapping[str, ApplicationItem]:
    """The application items of a catalogue file, by id; CatalogueError if the file is wrong."""
    with path.open("rb") as file:
        catalogue = parse_catalogue(tomllib.load(file))
    return MappingProxyType(
        {
            item.id: ApplicationItem(
                item_id=item.id,
                title=item.title.zh,
                department_id=item.department.id,
                time_limit_working_days=item.guide.time_limit_working_days,
                materials=tuple(
                    MaterialRule(m.id, deferrable=m.deferrable, optional=m.optional)
                    for m in item.guide.materials
                ),
            )
            for item in catalogue.items
            if item.kind is ItemKind.APPLICATION
        }
    )
