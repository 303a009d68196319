"""Paging a screen's blocks: every page fits its room, a heading never ends a page, a section
carried over repeats its heading, and nothing is lost or repeated."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from terminal.ui.paging import Block, paginate

SPACING = 4.0


def block(height: float, section: int | None = None, heading: bool = False,
          name: str = "") -> Block:
    return Block(name or f"{'h' if heading else 'b'}{height}", lambda _w: height, section, heading)


def page_height(page: list[Block]) -> float:
    return sum(b.height_at(100) + 1 for b in page) + SPACING * (len(page) - 1)


def continued(section: int) -> Block:
    return block(20, section, heading=True, name=f"continued {section}")


def test_everything_on_one_page_when_it_fits() -> None:
    blocks = [block(20, 0, heading=True), block(30, 0), block(30, 0)]
    assert paginate(blocks, 100, 200, SPACING) == [blocks]


def test_a_heading_goes_over_with_its_first_item() -> None:
    first = [block(20, 0, heading=True), block(60, 0)]
    second = [block(20, 1, heading=True), block(60, 1)]
    pages = paginate([*first, *second], 100, 120, SPACING, continued)
    # The second heading would fit on page 1, its first item would not: both go over.
    assert pages == [first, second]


def test_a_section_carried_over_repeats_its_heading() -> None:
    items = [block(40, 0, name=f"item {n}") for n in range(4)]
    pages = paginate([block(20, 0, heading=True), *items], 100, 120, SPACING, continued)
    assert len(pages) == 2
    assert pages[1][0].widget == "continued 0"
    assert [b.widget for b in pages[1][1:]] == ["item 2", "item 3"]


def test_a_block_taller_than_the_room_gets_a_page_of_its_own() -> None:
    blocks = [block(30), block(500), block(30)]
    assert paginate(blocks, 100, 100, SPACING) == [[blocks[0]], [blocks[1]], [blocks[2]]]


@given(st.lists(st.tuples(st.floats(5, 80), st.booleans()), min_size=1, max_size=40),
       st.floats(90, 400))
def test_pages_fit_and_keep_every_block_in_order(shape: list[tuple[float, bool]],
                                                  room: float) -> None:
    blocks = []
    section = -1
    for height, heading in shape:
        section += heading
        blocks.append(block(height, max(section, 0), heading))
    pages = paginate(blocks, 100, room, SPACING, continued)
    shown = [b for page in pages for b in page if not str(b.widget).startswith("continued")]
    assert shown == blocks  # nothing lost, nothing twice, in order
    for page in pages:
        assert page, "no empty page"
        assert page_height(page) <= room + 1e-6 or len(page) <= 2  # only an outsize block
        assert not (page[-1].heading and page is not pages[-1] and len(page) > 1), \
            "a heading ends a page"
