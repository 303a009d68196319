"""Paging a screen's blocks: every page fits its room, a heading never ends a page, a section
carried over repeats its heading, and nothing is lost or repeated."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from terminal.ui.paging import Block, even_pieces, line_pieces, paginate

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


def lines(count: int, line: float = 10.0, name: str = "text") -> Block:
    """A text block of ``count`` lines that splits by whole lines, as a label does."""

    def split(_width: float, first: float, room: float) -> list[Block]:
        pieces, start = [], 0
        for piece in line_pieces(list(range(count)), int(first // line), int(room // line)):
            pieces.append(lines(len(piece), line, f"{name}[{start}:]"))
            start += len(piece)
        return pieces

    return Block(name, lambda _w: count * line, 0, split=split)


def test_a_text_taller_than_the_room_is_split_by_its_lines() -> None:
    # An English item that is one long sentence, in large type on a 7-inch panel.
    before, after = block(30, 0), block(30, 0)
    pages = paginate([before, lines(24), after], 100, 100, SPACING)
    assert [[str(b.widget) for b in page] for page in pages] == [
        ["b30"], ["text[0:]"], ["text[8:]"], ["text[16:]"], ["b30"]]
    assert all(page_height(page) <= 100 for page in pages)


@given(st.integers(0, 200), st.integers(1, 30))
def test_a_text_splits_into_as_few_and_as_even_pieces_as_it_can(count: int, most: int) -> None:
    lines = [f"line {n}" for n in range(count)]
    pieces = even_pieces(lines, most)
    assert [line for piece in pieces for line in piece] == lines
    assert all(len(piece) <= most for piece in pieces)
    assert len(pieces) == max(1, -(-count // most))  # no more pages than whole pieces need
    sizes = [len(piece) for piece in pieces]
    assert max(sizes) - min(sizes) <= 1


def test_five_lines_on_pages_of_four_go_three_and_two() -> None:
    assert [len(p) for p in even_pieces(list("abcde"), 4)] == [3, 2]
    assert [len(p) for p in even_pieces(list("abcdefghij"), 4)] == [4, 3, 3]


def test_a_split_text_leaves_its_heading_room_on_the_first_page() -> None:
    # "About this service" alone on a page, its first item on the next: never.
    heading = block(20, 0, heading=True)
    pages = paginate([block(50), heading, lines(20)], 100, 100, SPACING, continued)
    assert [[str(b.widget) for b in page] for page in pages] == [
        ["b50"], ["h20", "text[0:]"], ["text[7:]"], ["text[14:]"]]
    assert all(page_height(page) <= 100 for page in pages)


def test_line_pieces_fill_the_first_page_under_the_headings() -> None:
    assert [len(p) for p in line_pieces(list(range(20)), 7, 9)] == [7, 7, 6]
    assert [len(p) for p in line_pieces(list(range(5)), 7, 9)] == [5]
    assert [len(p) for p in line_pieces(list(range(20)), 0, 9)] == [1, 7, 6, 6]


def test_a_text_that_fits_a_page_goes_over_whole() -> None:
    # Split only where a block alone is taller than a page: a text that fits on the next page
    # is not broken to fill the end of this one.
    first, text = block(30), lines(8)
    assert paginate([first, text], 100, 100, SPACING) == [[first], [text]]


@given(st.lists(st.tuples(st.floats(5, 80), st.booleans()), min_size=1, max_size=40),
       st.floats(90, 400), st.lists(st.integers(1, 60), max_size=3))
def test_pages_fit_and_keep_every_block_in_order(shape: list[tuple[float, bool]],
                                                  room: float, texts: list[int]) -> None:
    blocks = []
    section = -1
    for height, heading in shape:
        section += heading
        blocks.append(block(height, max(section, 0), heading))
    for n, count in enumerate(texts):  # long texts among them, split by lines where too tall
        blocks.insert(len(blocks) * n // 3 + (not blocks[0].heading), lines(count, name=f"t{n}"))
    pages = paginate(blocks, 100, room, SPACING, continued)
    shown = [b for page in pages for b in page if not str(b.widget).startswith("continued")]
    line_count = {str(b.widget): b.height_at(100) // 10 for b in blocks}
    merged: list[object] = []
    for b in shown:  # a split text's pieces, in order, are the text again
        name = str(b.widget)
        if "[" in name and not name.endswith("[0:]"):
            assert merged and merged[-1] == name.split("[", maxsplit=1)[0], "a piece out of order"
            line_count[name.split("[", maxsplit=1)[0]] -= b.height_at(100) // 10
            continue
        merged.append(name.split("[", maxsplit=1)[0])
        line_count[merged[-1]] -= b.height_at(100) // 10
    assert merged == [str(b.widget) for b in blocks]  # nothing lost, nothing twice, in order
    assert all(left == 0 for name, left in line_count.items() if name.startswith("t")), \
        "a split text lost or repeated lines"
    for page in pages:
        assert not (str(page[0].widget).startswith("continued") and len(page) > 1
                    and "[" in str(page[1].widget) and not str(page[1].widget).endswith("[0:]")), \
            "a heading carried between the pieces of one text"
        assert page, "no empty page"
        assert page_height(page) <= room + 1e-6 or len(page) <= 2  # only an outsize block
        # A heading ends a page only where it, the headings after it and the first item could
        # share no page at all.
        if page[-1].heading and page is not pages[-1]:
            chain = [b for b in page if b.heading]
            for b in (b for later in pages[pages.index(page) + 1:] for b in later):
                if not str(b.widget).startswith("continued"):
                    chain.append(b)
                    if not b.heading:
                        break
            assert page_height(chain) > room, "a heading ends a page"
