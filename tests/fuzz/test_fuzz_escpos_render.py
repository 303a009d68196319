"""Fuzz the virtual printer's ESC/POS interpreter (simulator/escpos_render.py) with any bytes.

A printer raises nothing at the bytes it is sent: whatever it cannot use it skips, so the
interpreter has no error of its own and may raise nothing at all. Unknown or broken commands
become Ignored (with a note), and whatever was printed renders to text and PNG. Streams are
random bytes mixed with real commands, so the fuzzer reaches deep into QR, raster and Chinese
text handling instead of stopping at the first unknown byte.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simulator.escpos_render import (
    MAX_PAPER_DOTS,
    Command,
    EscPosParser,
    Paper,
    Parsed,
    Text,
    TextRow,
    render_png,
    render_text,
)

_DOTS = 576  # 80 mm paper; 58 mm differs only in width


def _gs_paren_k(body: st.SearchStrategy[bytes]) -> st.SearchStrategy[bytes]:
    return body.map(lambda b: b"\x1d(k" + len(b).to_bytes(2, "little") + b)


def _qr_bodies(longest: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.builds(lambda m: b"1A" + m + b"\x00", st.sampled_from([b"1", b"2", b"3"])),
        st.integers(0, 255).map(lambda n: b"1C" + bytes([n])),  # module size
        st.integers(0, 255).map(lambda n: b"1E" + bytes([n])),  # error level
        st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda c, n: c * n,
                st.sampled_from([b"x", b"7", b"\xe4\xb8\xad"]),
                st.integers(0, longest),
            ),
        ).map(lambda data: b"1P0" + data),
        st.just(b"1Q0"),
        st.binary(max_size=6),
    )


def _fragments(longest_qr: int) -> st.SearchStrategy[bytes]:
    return st.one_of(
        st.binary(max_size=24),
        st.sampled_from(
            [
                b"\x1b@",
                b"\x1c&",
                b"\x1c.",
                b"\x1b2",
                b"\n",
                b"\r",
                b"\t",
                b"\x1dV\x00",
                b"\x1dVA\x03",
            ]
        ),
        st.tuples(st.sampled_from(b"aE!dJ3 -MtG{RrUVcp"), st.integers(0, 255)).map(
            lambda t: bytes([0x1B, t[0], t[1]])
        ),
        st.tuples(st.sampled_from(b"!VBbfhHw|aIrLWP"), st.integers(0, 255)).map(
            lambda t: bytes([0x1D, t[0], t[1]])
        ),
        st.tuples(st.sampled_from(b"!W-CS&."), st.integers(0, 255)).map(
            lambda t: bytes([0x1C, t[0], t[1]])
        ),
        st.integers(0, 8).map(lambda n: bytes([0x10, 0x04, n])),
        _gs_paren_k(_qr_bodies(longest_qr)),
        st.builds(  # GS v 0: a small raster image, its data, or not all of it
            lambda w, h, cut: b"\x1dv0\x00" + bytes([w, 0, h, 0]) + b"\xaa" * max(w * h - cut, 0),
            st.integers(0, 8),
            st.integers(0, 8),
            st.integers(0, 3),
        ),
        st.builds(lambda n: b"\x1d8L" + n.to_bytes(4, "little") + b"\x55" * n, st.integers(0, 16)),
        st.text(max_size=12).map(lambda s: s.encode("gb18030")),
        st.text("保险证明𠀀", max_size=6).map(lambda s: s.encode("gb18030")),
        # A GB18030 lead byte and whatever follows it, control bytes included.
        st.tuples(st.integers(0x81, 0xFE), st.binary(min_size=1, max_size=3)).map(
            lambda t: bytes([t[0]]) + t[1]
        ),
        st.builds(
            lambda n, k: (b"\x1bd" + bytes([n])) * k, st.integers(0, 255), st.integers(1, 40)
        ),
    )


# Up to 3,500 bytes of QR data crosses the capacity of the largest symbol (2,953 bytes at level
# L), which Paper decides without drawing; drawing symbols that large takes a third of a second
# each, so the PNG property draws symbols of up to 200 bytes (the same drawing code).
STREAMS = st.lists(_fragments(longest_qr=3500), max_size=24).map(b"".join)
STREAMS_TO_DRAW = st.lists(_fragments(longest_qr=200), max_size=24).map(b"".join)


def _merge_text(commands: list[Command]) -> list[Command]:
    """Adjacent text runs joined: where a run is split depends only on how the bytes arrived."""
    merged: list[Command] = []
    for command in commands:
        previous = merged[-1] if merged else None
        if (
            isinstance(command, Text)
            and isinstance(previous, Text)
            and previous.wide is command.wide
        ):
            merged[-1] = Text(previous.text + command.text, command.wide)
        else:
            merged.append(command)
    return merged


def _print(parsed: list[Parsed]) -> Paper:
    paper = Paper(_DOTS)
    for item in parsed:
        paper.apply(item.command)
    return paper


@given(STREAMS, st.lists(st.integers(0, 4000), max_size=6))
def test_any_bytes_parse_the_same_however_they_arrive(stream: bytes, cuts: list[int]) -> None:
    whole_parser = EscPosParser()
    whole = whole_parser.feed(stream)
    assert b"".join(p.raw for p in whole) == stream[: len(stream) - whole_parser.pending]
    pieces_parser = EscPosParser()
    pieces: list[Parsed] = []
    start = 0
    for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
        pieces += pieces_parser.feed(stream[start:cut])
        start = cut
    assert pieces_parser.pending == whole_parser.pending
    assert _merge_text([p.command for p in pieces]) == _merge_text([p.command for p in whole])


@given(STREAMS)
def test_any_bytes_print_and_render_to_text_without_raising(stream: bytes) -> None:
    paper = _print(EscPosParser().feed(stream))
    rows, _notes = paper.take()
    text = render_text(rows, _DOTS)
    assert text.endswith("\n") and text.count("\n") == max(len(rows), 1)
    for row in rows:
        if isinstance(row, TextRow):
            assert "\n" not in "".join(glyph.char for glyph in row.glyphs)
    assert sum(row.height for row in rows) <= MAX_PAPER_DOTS


@given(STREAMS_TO_DRAW)
def test_any_bytes_render_to_a_png_as_wide_as_the_paper(stream: bytes) -> None:
    rows, _notes = _print(EscPosParser().feed(stream)).take()
    image = render_png(rows, _DOTS)
    assert image.width == _DOTS and image.height <= MAX_PAPER_DOTS + 24
