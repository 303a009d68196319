"""Pages of blocks: where a screen's content breaks so that every page fits, no fold; pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class Block:
    """One unit of paged content (a heading, a numbered item, a note, a field, a QR code) and
    how tall it is at a width; a page break falls only between blocks."""

    def __init__(self, widget: Any, height_at: Callable[[float], float],
                 section: int | None = None, heading: bool = False) -> None:
        self.widget, self.height_at = widget, height_at
        self.section, self.heading = section, heading


def paginate(blocks: list[Block], width: float, room: float, spacing: float,
             continued: Callable[[int], Block] | None = None) -> list[list[Block]]:
    """``blocks`` onto pages ``room`` tall at ``width``: a heading never last on a page, and a
    section carried over starts its page with ``continued(section)`` (its heading "（续）").
    A block taller than the room gets a page of its own (what shows it must say so)."""

    def height(block: Block) -> float:
        return block.height_at(width) + 1  # a pixel for Kivy's rounding of each line box

    pages: list[list[Block]] = [[]]
    used = 0.0
    for index, block in enumerate(blocks):
        need = height(block) + (spacing if pages[-1] else 0.0)
        # A heading goes over with what follows it (the next headings, if a section is empty,
        # and the first item) rather than end a page.
        ahead = index + 1
        while block.heading and ahead < len(blocks):
            need += spacing + height(blocks[ahead])
            if not blocks[ahead].heading:
                break
            ahead += 1
        if pages[-1] and used + need > room:
            pages.append([])
            used = 0.0
            if continued is not None and not block.heading and block.section is not None:
                carried = continued(block.section)
                # Only where the block still fits under it: an item is worth more than the
                # reminder of its heading.
                if height(carried) + spacing + height(block) <= room:
                    pages[-1].append(carried)
                    used = height(carried)
        used += height(block) + (spacing if pages[-1] else 0.0)
        pages[-1].append(block)
    return pages
