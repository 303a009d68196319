"""Pages of blocks: where a screen's content breaks so that every page fits, no fold; pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (width, first, room) -> pieces: the first at most ``first`` tall, the others ``room``.
Split = Callable[[float, float, float], "list[Block]"]


class Block:
    """One unit of paged content (a heading, a numbered item, a note, a field, a QR code) and
    how tall it is at a width; a page break falls only between blocks, or inside a block that
    can ``split`` itself (text, by its lines) where it alone is taller than a page."""

    def __init__(self, widget: Any, height_at: Callable[[float], float],
                 section: int | None = None, heading: bool = False,
                 split: Split | None = None) -> None:
        self.widget, self.height_at = widget, height_at
        self.section, self.heading = section, heading
        self.split = split


def paginate(blocks: list[Block], width: float, room: float, spacing: float,
             continued: Callable[[int], Block] | None = None) -> list[list[Block]]:
    """``blocks`` onto pages ``room`` tall at ``width``: a heading never last on a page, and a
    section carried over starts its page with ``continued(section)`` (its heading "（续）").
    A block taller than the room is split where it can be (a long sentence in large type on a
    7-inch panel), and otherwise gets a page of its own (what shows it must say so)."""

    def height(block: Block) -> float:
        return block.height_at(width) + 1  # a pixel for Kivy's rounding of each line box

    pieces: list[Block] = []
    continuing: set[int] = set()  # a split text's later pieces: no heading comes between them
    above = 0.0  # the headings right before a block, which go over to its page with it
    for block in blocks:
        if block.split is not None and height(block) > room:
            # The first piece leaves its headings room above it (should they alone fill most of
            # a page, it takes a line anyway and they go on a page of their own).
            parts = block.split(width, room - 1 - above, room - 1)
            continuing.update(id(part) for part in parts[1:])
            pieces += parts
        else:
            pieces.append(block)
        above = above + height(block) + spacing if block.heading else 0.0
    blocks = pieces
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
            if (continued is not None and not block.heading and block.section is not None
                    and id(block) not in continuing):
                carried = continued(block.section)
                # Only where the block still fits under it: an item is worth more than the
                # reminder of its heading.
                if height(carried) + spacing + height(block) <= room:
                    pages[-1].append(carried)
                    used = height(carried)
        used += height(block) + (spacing if pages[-1] else 0.0)
        pages[-1].append(block)
    return pages


def line_pieces(lines: list[str], first: int, most: int) -> list[list[str]]:
    """``lines`` in pieces for pages: at most ``first`` on the first (under its headings), at
    most ``most`` on each of the others, in as few pieces as there must be."""
    if first >= most or len(lines) <= first:
        return even_pieces(lines, most)
    return [lines[:max(1, first)], *even_pieces(lines[max(1, first):], most)]


def even_pieces(lines: list[str], most: int) -> list[list[str]]:
    """``lines`` in as few pieces of at most ``most`` as there must be, as even as can be: five
    lines on pages of four go 3 + 2, not 4 and a lone line over the page."""
    if not lines:
        return [[]]
    count = -(-len(lines) // max(1, most))
    base, longer = divmod(len(lines), count)  # the first ``longer`` pieces take a line more
    pieces, start = [], 0
    for index in range(count):
        end = start + base + (index < longer)
        pieces.append(lines[start:end])
        start = end
    return pieces

