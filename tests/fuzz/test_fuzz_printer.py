"""Fuzz the printer protocol: status replies and receipt layout raise only their own errors.

Status bytes come from the printer (devices/printer/protocol.py status_byte, decode_status); the
receipt text comes from the hub and the catalogue, so layout_receipt is fed receipts of any
Unicode: surrogates, emoji, combining marks, control characters, very long words. What may come
out: StatusReplyError and ReceiptLayoutError, nothing else; and what is laid out always fits the
paper and carries no byte the printer would take as a command.
"""

from __future__ import annotations

import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from devices.base import (
    Align,
    Feed,
    FieldLine,
    Health,
    QrCode,
    Receipt,
    ReceiptBlock,
    Rule,
    TextLine,
)
from devices.printer.protocol import (
    PAPER_58MM,
    PAPER_80MM,
    Paper,
    PrintFeed,
    PrintLine,
    PrintQr,
    ReceiptLayoutError,
    StatusReplyError,
    decode_status,
    device_state,
    encode_text,
    is_valid_status_byte,
    layout_receipt,
    sanitize_text,
    status_byte,
    text_columns,
)

# --- status bytes -------------------------------------------------------------------------------


@given(st.binary(max_size=64))
def test_any_reply_gives_a_valid_status_byte_or_status_reply_error(reply: bytes) -> None:
    try:
        value = status_byte(reply)
    except StatusReplyError:
        assert not reply or not is_valid_status_byte(reply[-1])
        return
    assert value == reply[-1] and is_valid_status_byte(value)


_ANY_INT = st.one_of(st.integers(0, 255), st.integers())


@given(_ANY_INT, _ANY_INT, _ANY_INT, _ANY_INT)
def test_any_four_replies_decode_to_a_device_state_or_status_reply_error(
    printer: int, offline_cause: int, error_cause: int, roll_paper: int
) -> None:
    try:
        status = decode_status(printer, offline_cause, error_cause, roll_paper)
    except StatusReplyError:
        replies = (printer, offline_cause, error_cause, roll_paper)
        assert not all(is_valid_status_byte(value) for value in replies)
        return
    state = device_state(status)
    assert state.health in set(Health) and (state.health is Health.OK) == (state.reason == "")


# --- receipt text -------------------------------------------------------------------------------

# Every code point, surrogates included (hypothesis leaves them out unless asked).
ANY_CHARACTER = st.characters(exclude_categories=())
_LATIN = "abcdefghijklmnopqrstuvwxyz" * 8
_CHINESE = "本证明由政务服务自助终端打印可扫码或凭验证码核验真伪办理社会保险参保证明" * 4


def _slice_of(source: str, longest: int) -> st.SearchStrategy[str]:
    # Two choices for a run of up to ``longest`` characters: long runs stay cheap to generate.
    return st.builds(
        lambda start, size: source[start : start + size],
        st.integers(0, 25),
        st.integers(1, longest),
    )


_PIECES = st.one_of(
    st.text(ANY_CHARACTER, max_size=12),
    _slice_of(_LATIN, 150),  # a word longer than any line
    _slice_of(_CHINESE, 100),
    st.text("，。、；：？！）》」』】〉”’,.;:?!)]}%", min_size=1, max_size=3),  # never start a line
    st.text(" \t\n\u3000\xa0", min_size=1, max_size=3),
    st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF),  # emoji
    st.just("👩\u200d👩\u200d👧\ufe0f"),  # a joined emoji sequence
    st.text(st.characters(categories=("Mn", "Me")), min_size=1, max_size=4),  # combining marks
    st.text(st.characters(categories=("Cc", "Cf", "Cs", "Co", "Cn")), min_size=1, max_size=4),
    st.sampled_from(["\x1b@", "\x1d(k", "\x10\x04\x01", "\x1bd\xff"]),  # ESC/POS in the text
)
RECEIPT_TEXT = st.lists(_PIECES, max_size=6).map("".join)

_BLOCKS: st.SearchStrategy[ReceiptBlock] = st.one_of(
    st.builds(TextLine, RECEIPT_TEXT, st.sampled_from(Align), st.booleans(), st.booleans()),
    st.builds(FieldLine, RECEIPT_TEXT, RECEIPT_TEXT),
    st.just(Rule()),
    st.builds(QrCode, st.one_of(RECEIPT_TEXT, st.text(max_size=500)), RECEIPT_TEXT),
    st.builds(Feed, st.integers(-5, 600)),
)
# Blocks are laid out one by one, so a few per receipt find what many would, and are cheaper to
# generate (generating, not laying out, is what most of an example's time goes to).
RECEIPTS = st.lists(_BLOCKS, min_size=1, max_size=3).map(lambda blocks: Receipt(tuple(blocks)))

_NOT_PRINTED = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def _visible(text: str) -> str:
    """The characters that must all reach the paper, in order: everything but white space."""
    return "".join(ch for ch in text if not ch.isspace())


def check_layout(receipt: Receipt, paper: Paper) -> None:
    """Lay ``receipt`` out; only ReceiptLayoutError may stop it, and the result must be sound."""
    try:
        items = layout_receipt(receipt, paper)
    except ReceiptLayoutError:
        return
    for item in items:
        if isinstance(item, PrintLine):
            columns = paper.columns // 2 if item.large else paper.columns
            assert text_columns(item.text) <= columns, "line wider than the paper"
            assert not {unicodedata.category(ch) for ch in item.text} & _NOT_PRINTED
            encoded = encode_text(item.text)
            # The printer takes any byte below 0x20 (ESC, GS, DLE, LF) or DEL as control.
            assert all(0x20 <= b != 0x7F for b in encoded), "a control byte in receipt text"
        elif isinstance(item, PrintQr):
            assert 3 <= item.module_dots <= 8
        else:
            assert isinstance(item, PrintFeed) and 1 <= item.lines <= 255


@given(RECEIPTS)
def test_any_receipt_lays_out_on_58mm_paper_or_raises_receipt_layout_error(
    receipt: Receipt,
) -> None:
    check_layout(receipt, PAPER_58MM)


@given(RECEIPTS)
def test_any_receipt_lays_out_on_80mm_paper_or_raises_receipt_layout_error(
    receipt: Receipt,
) -> None:
    check_layout(receipt, PAPER_80MM)


@given(RECEIPT_TEXT, st.booleans(), st.sampled_from([PAPER_58MM, PAPER_80MM]))
def test_wrapped_text_loses_no_printable_character(text: str, large: bool, paper: Paper) -> None:
    items = layout_receipt(Receipt((TextLine(text, large=large),)), paper)
    printed = "".join(item.text for item in items if isinstance(item, PrintLine))
    assert _visible(printed) == _visible(sanitize_text(text))


@given(RECEIPT_TEXT, RECEIPT_TEXT, st.sampled_from([PAPER_58MM, PAPER_80MM]))
def test_a_field_line_loses_no_printable_character(label: str, value: str, paper: Paper) -> None:
    items = layout_receipt(Receipt((FieldLine(label, value),)), paper)
    printed = "".join(item.text for item in items if isinstance(item, PrintLine))
    assert _visible(printed) == _visible(sanitize_text(label)) + _visible(sanitize_text(value))


@given(st.text(ANY_CHARACTER))
def test_sanitizing_is_idempotent_and_leaves_only_printable_composed_text(text: str) -> None:
    clean = sanitize_text(text)
    assert sanitize_text(clean) == clean and unicodedata.is_normalized("NFC", clean)
    assert not {unicodedata.category(ch) for ch in clean.replace("\n", "")} & _NOT_PRINTED


@given(st.text(ANY_CHARACTER))
def test_any_text_encodes_without_control_bytes(text: str) -> None:
    encoded = encode_text(text)
    assert all((0x20 <= b != 0x7F) or b == 0x0A for b in encoded)
