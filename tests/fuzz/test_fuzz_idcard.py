"""Fuzz the SAM_A protocol: whatever the module sends, only frames, problems or CardErrors come out.

Covered: the answer framer (any bytes, any split into reads, frames hidden in noise), the read
answer and the text block (random bytes, a valid block with bytes flipped, every valid card the
simulator can compose round-tripping), and that no error message quotes a name or ID number.
"""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from devices.base import CardError, CardHolder, DeviceError, IdentityDocument
from devices.idcard import protocol
from devices.idcard.protocol import Answer, AnswerFramer, FrameProblem, FrameProblemKind
from flows.identity import check_character
from simulator.vsam import compose_text_block


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    """A valid 公民身份号码: any region, a real date, any sequence, the right check character."""
    region = draw(st.text("0123456789", min_size=6, max_size=6))
    born = draw(st.dates(min_value=dt.date(1900, 1, 1)))
    sequence = draw(st.text("0123456789", min_size=3, max_size=3))
    first17 = f"{region}{born.year:04d}{born.month:02d}{born.day:02d}{sequence}"
    return first17 + check_character(first17)


# Names as cards hold them: BMP letters (UCS-2 has no room for more), 中点 for minority names.
_NAMES = st.text(
    st.one_of(st.characters(categories=["Lo"], max_codepoint=0xFFFF), st.just("·")),
    min_size=1,
    max_size=15,
).filter(lambda name: name.strip(" ·") == name)
_DATES = st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2099, 12, 31))


def _chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20))
def test_framer_takes_any_bytes_the_same_however_split(data: bytes, cuts: list[int]) -> None:
    whole = AnswerFramer()
    expected = whole.feed(data)
    split = AnswerFramer()
    got = [item for chunk in _chunked(data, cuts) for item in split.feed(chunk)]
    # Skipped runs may be reported in more, smaller pieces when split; everything else is equal.
    assert [i for i in got if not _skipped(i)] == [i for i in expected if not _skipped(i)]
    assert _skipped_bytes(got) == _skipped_bytes(expected)
    assert split.pending == whole.pending <= protocol.HEADER_SIZE + protocol.MAX_LENGTH
    assert all(isinstance(item, Answer | FrameProblem) for item in got)


def _skipped(item: Answer | FrameProblem) -> bool:
    return isinstance(item, FrameProblem) and item.kind is FrameProblemKind.SKIPPED


def _skipped_bytes(items: list[Answer | FrameProblem]) -> int:
    return sum(item.size for item in items if isinstance(item, FrameProblem) and _skipped(item))


_NOISE = st.binary(max_size=40).filter(lambda noise: protocol.PREAMBLE not in noise)
_ANSWERS = st.tuples(st.integers(0, 255), st.binary(max_size=300))


@given(st.lists(st.tuples(_NOISE, _ANSWERS), max_size=6), st.lists(st.integers(), max_size=10))
def test_every_frame_in_noise_comes_out_in_order(
    parts: list[tuple[bytes, tuple[int, bytes]]], cuts: list[int]
) -> None:
    stream = b"".join(
        noise + protocol.answer_frame(sw3, payload) for noise, (sw3, payload) in parts
    )
    framer = AnswerFramer()
    got = [item for chunk in _chunked(stream, cuts) for item in framer.feed(chunk)]
    answers = [item for item in got if isinstance(item, Answer)]
    assert answers == [Answer(0, 0, sw3, payload) for _noise, (sw3, payload) in parts]
    assert all(_skipped(item) for item in got if isinstance(item, FrameProblem))


@given(st.binary(min_size=256, max_size=256))
def test_any_text_block_gives_a_holder_or_a_card_error(block: bytes) -> None:
    try:
        holder = protocol.holder_from_text_block(block)
    except CardError:
        return
    assert len(holder.id_number) == 18
    assert holder.document is IdentityDocument.RESIDENT_ID_CARD


@given(st.integers(0, 255), st.binary(max_size=1400))
def test_any_read_answer_gives_a_holder_or_a_device_error(sw3: int, payload: bytes) -> None:
    try:
        result = protocol.holder_from_read_answer(Answer(0, 0, sw3, payload))
    except DeviceError:
        return
    assert isinstance(result, CardHolder)


@given(
    id_numbers(),
    _NAMES,
    st.sampled_from("12"),
    _DATES,
    st.one_of(st.none(), _DATES),
)
def test_every_composed_card_reads_back(
    id_number: str, name: str, sex: str, birth: dt.date, valid_until: dt.date | None
) -> None:
    block = compose_text_block(
        id_number=id_number, name=name, sex=sex, birth=birth, valid_until=valid_until
    )
    holder = protocol.holder_from_text_block(block)
    assert (holder.id_number, holder.name, holder.birth_date, holder.expires) == (
        id_number,
        name,
        birth,
        valid_until,
    )
    assert holder.region_code == id_number[:6]


@given(
    id_numbers(),
    _NAMES.filter(lambda name: len(name) >= 2),
    st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), min_size=1, max_size=8),
)
def test_errors_never_quote_the_card(
    id_number: str, name: str, flips: list[tuple[int, int]]
) -> None:
    block = bytearray(
        compose_text_block(
            id_number=id_number,
            name=name,
            sex="1",
            birth=dt.date(1980, 1, 1),
            valid_until=dt.date(2030, 1, 1),
        )
    )
    for offset, value in flips:
        block[offset] = value
    try:
        protocol.holder_from_text_block(bytes(block))
    except CardError as exc:
        text = f"{exc} {exc.reason} {exc!r}"
        assert id_number not in text
        assert id_number[6:14] not in text
        assert name not in text
