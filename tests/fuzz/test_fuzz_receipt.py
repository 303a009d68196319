"""Fuzz the proof receipt (flows/receipt.py) over any document the hub may answer with.

Whatever the hub's texts are, proof_receipt builds a receipt and the printer lays it out, or the
layout refuses it with ReceiptLayoutError (a verify URL too long for a QR code, or not text);
nothing else is raised. And the holder's full ID number and name, wherever the hub repeats them
in the texts the receipt scrubs, never reach the paper.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata

from hypothesis import assume, given
from hypothesis import strategies as st

from devices.base import CardHolder, Sex
from devices.printer.protocol import (
    PAPER_58MM,
    PAPER_80MM,
    Paper,
    PrintLine,
    PrintQr,
    ReceiptLayoutError,
    layout_receipt,
    text_columns,
)
from flows.clock import CHINA_ZONE
from flows.hub import DocumentField, ErrandDocument
from flows.identity import check_character
from flows.receipt import proof_receipt

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included
_ANY_TEXT = st.text(ANY_CHARACTER, max_size=40)
_DIGITS = "0123456789"
_PRINTED_AT = dt.datetime(2026, 5, 9, 7, 35, 25, tzinfo=dt.UTC)
_TERMINAL_ID = "kiosk-0001"


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 公民身份号码: any region, a real date, any sequence, the right check character."""
    region = draw(st.text(_DIGITS, min_size=6, max_size=6))
    born = draw(st.dates())
    sequence = draw(st.text(_DIGITS, min_size=3, max_size=3))
    first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{sequence}"
    return first17 + check_character(first17)


# Names as the card gives them (GBK letters, a middle dot in some); never '*', which is the mask.
def names(min_size: int) -> st.SearchStrategy[str]:
    return st.text(
        st.one_of(st.characters(categories=["Lo"]), st.just("·")), min_size=min_size, max_size=6
    )


def holders(name: st.SearchStrategy[str]) -> st.SearchStrategy[CardHolder]:
    return st.builds(
        CardHolder,
        id_number=id_numbers(),
        name=name,
        sex=st.sampled_from(Sex),
        birth_date=st.none() | st.dates(),
        card_number=st.from_regex(r"[A-Z][0-9]{8}", fullmatch=True),
        region_code=st.text(_DIGITS, min_size=6, max_size=6),
        expires=st.none() | st.dates(),
    )


_URLS = st.one_of(
    _ANY_TEXT,
    st.text("abcdefghijklmnopqrstuvwxyz0123456789/?=&%-", max_size=600).map(
        lambda path: "https://hub.example.gov.cn/verify/" + path
    ),
)


def documents(
    texts: st.SearchStrategy[str] = _ANY_TEXT, urls: st.SearchStrategy[str] = _URLS
) -> st.SearchStrategy[ErrandDocument]:
    return st.builds(
        ErrandDocument,
        errand_id=_ANY_TEXT,
        title=texts,
        case_number=texts,
        verification_code=texts,
        verify_url=urls,
        issued_at=st.datetimes(timezones=st.just(dt.UTC)),
        fields=st.lists(st.builds(DocumentField, texts, texts), max_size=4).map(tuple),
    )


def printed_lines(document: ErrandDocument, holder: CardHolder, paper: Paper) -> list[str]:
    """The proof as printed on ``paper``; ReceiptLayoutError is the one error it may raise."""
    receipt = proof_receipt(
        document, holder, terminal_id=_TERMINAL_ID, printed_at=_PRINTED_AT, zone=CHINA_ZONE
    )
    lines: list[str] = []
    for item in layout_receipt(receipt, paper):
        if isinstance(item, PrintLine):
            columns = paper.columns // 2 if item.large else paper.columns
            assert text_columns(item.text) <= columns
            lines.append(item.text)
        elif isinstance(item, PrintQr):
            lines.append(item.data)  # what a phone reads off the paper
    return lines


@given(documents(), holders(names(1)), st.sampled_from([PAPER_58MM, PAPER_80MM]))
def test_any_hub_document_prints_or_raises_receipt_layout_error(
    document: ErrandDocument, holder: CardHolder, paper: Paper
) -> None:
    try:
        printed_lines(document, holder, paper)
    except ReceiptLayoutError:
        return


# What the proof prints whoever it is for: a name found in it is not a leak.
_TEMPLATE = "\n".join(
    printed_lines(
        ErrandDocument("e", "", "", "", "https://hub.example.gov.cn/v", _PRINTED_AT, ()),
        CardHolder("", "", Sex.UNKNOWN, None, "", "", None),
        PAPER_80MM,
    )
)


@st.composite
def hub_texts_repeating(draw: st.DrawFn, holder: CardHolder) -> str:
    """Hub text with the holder's ID number (either case of X) or name somewhere in it; the
    hub may put it in any text (title, fields, case number, code, verification link)."""
    secret = draw(st.sampled_from([holder.id_number, holder.id_number.lower(), holder.name]))
    return draw(_ANY_TEXT) + secret + draw(_ANY_TEXT)


# A one-character name is its own mask (张 is shown as 张), so only longer ones are planted.
@given(holders(names(2)), st.data())
def test_the_holders_id_number_and_name_never_reach_the_paper_from_hub_texts(
    holder: CardHolder, data: st.DataObject
) -> None:
    name = unicodedata.normalize("NFC", holder.name)
    # A name the template itself prints (公民, 打印) cannot be told from it.
    assume(len(name) > 1 and name not in _TEMPLATE)
    repeating = st.one_of(_ANY_TEXT, hub_texts_repeating(holder))
    document = data.draw(documents(repeating, st.one_of(_URLS, repeating)))
    for paper in (PAPER_58MM, PAPER_80MM):
        try:
            lines = printed_lines(document, holder, paper)
        except ReceiptLayoutError:
            return
        for line in lines:
            assert holder.id_number not in line.upper()
            assert name not in line


# --- found by fuzzing: the holder leaking past the scrubber (fixed in flows/receipt.py) ---------

_HOLDER = CardHolder(
    "11010519491231002X", "欧阳娜娜", Sex.FEMALE, None, "A12345678", "110105", None
)
_DOCUMENT = ErrandDocument(
    "ssc_enrollment_proof",
    "社会保险参保证明",
    "CASE-1",
    "7K3Q",
    "https://hub.example.gov.cn/v",
    _PRINTED_AT,
    (),
)


def _leaks(document: ErrandDocument) -> bool:
    text = "\n".join(printed_lines(document, _HOLDER, PAPER_80MM))
    return _HOLDER.id_number in text or _HOLDER.name in text


def test_a_zero_width_character_inside_the_name_or_number_does_not_defeat_the_scrubbing() -> None:
    # The scrubber looks for 欧阳娜娜; the printer then drops U+200B and prints 欧阳娜娜 in full.
    fields = (
        DocumentField("备注", "欧阳\u200b娜娜"),
        DocumentField("号码", "1101051949\u200b1231002X"),
    )
    assert not _leaks(dataclasses.replace(_DOCUMENT, fields=fields))


def test_the_hub_repeating_the_number_in_its_codes_is_scrubbed() -> None:
    assert not _leaks(dataclasses.replace(_DOCUMENT, case_number="11010519491231002X"))


def test_the_hub_repeating_the_name_in_its_codes_is_scrubbed() -> None:
    assert not _leaks(dataclasses.replace(_DOCUMENT, verification_code="欧阳娜娜"))
