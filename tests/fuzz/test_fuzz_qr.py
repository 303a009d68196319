"""Fuzz every QR payload path: the screen's qr_matrix and the printer's qr_module_dots.

Any text, lone surrogates included, gives a matrix (or a module size) or the module's own typed
error: QrDataError on screen, ReceiptLayoutError on paper.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.printer.protocol import (
    PAPER_58MM,
    PAPER_80MM,
    Paper,
    ReceiptLayoutError,
    qr_module_dots,
)
from terminal.ui.qr import QUIET_ZONE_MODULES, QrDataError, qr_matrix

ANY_CHARACTER = st.characters(exclude_categories=())  # surrogates included
_URL_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789-._~:/?#[]@!$&'()*+,;=%"
_SHORT_PAYLOADS = st.one_of(
    st.text(ANY_CHARACTER, max_size=40),
    st.text(_URL_CHARACTERS, max_size=80).map(lambda path: "https://zwfw.example.gov.cn/" + path),
    # A lone surrogate somewhere in a URL (a broken \\uXXXX escape in the hub's JSON).
    st.builds(
        lambda url, c: url + c,
        st.just("https://zwfw.example.gov.cn/v?c="),
        st.characters(categories=["Cs"]),
    ),
)
# Around the largest symbols: 2,331 bytes fit version 40 at level M, digits pack denser. A symbol
# that large takes qrcode a third of a second to draw, so one example in 256 is one of these.
_LONG_PAYLOADS = st.builds(
    lambda c, n: c * n, st.sampled_from(["x", "中", "7", "A"]), st.integers(0, 6000)
)
QR_PAYLOADS = st.sampled_from([False] * 255 + [True]).flatmap(
    lambda long: _LONG_PAYLOADS if long else _SHORT_PAYLOADS
)
PRINTER_QR_PAYLOADS = st.one_of(_SHORT_PAYLOADS, _LONG_PAYLOADS)  # all cheap for the printer


# --- unit tests of the typed error (each failed before it existed) ------------------------------


def test_a_lone_surrogate_is_qr_data_error_not_unicode_encode_error() -> None:
    with pytest.raises(QrDataError):
        qr_matrix("\ud800")
    with pytest.raises(QrDataError):
        qr_matrix("https://zwfw.example.gov.cn/\udfff")


def test_data_too_long_for_any_symbol_is_qr_data_error() -> None:
    # qrcode 8.2 raised a bare ValueError("Invalid version (was 41, ...)") here.
    assert len(qr_matrix("x" * 2331)) == 177 + 2 * QUIET_ZONE_MODULES  # version 40 at level M
    with pytest.raises(QrDataError):
        qr_matrix("x" * 2332)


# --- properties -----------------------------------------------------------------------------------


@given(QR_PAYLOADS)
def test_any_payload_gives_a_square_symbol_or_qr_data_error(data: str) -> None:
    try:
        matrix = qr_matrix(data)
    except QrDataError:
        return
    side = len(matrix)
    # Versions 1..40 are 21..177 modules wide, 4 more per version; a quiet zone on each side.
    modules = side - 2 * QUIET_ZONE_MODULES
    assert 21 <= modules <= 177 and (modules - 21) % 4 == 0
    assert all(len(row) == side for row in matrix)
    assert not any(matrix[0]) and not any(row[0] for row in matrix)  # the quiet zone is white


@given(PRINTER_QR_PAYLOADS, st.sampled_from([PAPER_58MM, PAPER_80MM]))
def test_any_payload_gets_a_printable_module_size_or_receipt_layout_error(
    data: str, paper: Paper
) -> None:
    try:
        dots = qr_module_dots(data, paper)
    except ReceiptLayoutError:
        return
    # 3 dots is the least a phone reads from thermal paper; 412 bytes fill version 15 at level M,
    # the largest symbol that still fits 58 mm paper at 3 dots.
    assert 3 <= dots <= 8 and len(data.encode("utf-8")) <= 412
