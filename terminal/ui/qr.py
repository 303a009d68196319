"""QR code modules for a payload, as a boolean matrix the UI draws pixel-exact; pure, no Kivy."""

from __future__ import annotations

QUIET_ZONE_MODULES = 4  # the standard's minimum; phone cameras struggle with less


class QrDataError(ValueError):
    """The payload cannot be a QR code: it is not Unicode text, or too long for any symbol."""


def qr_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """Rows of modules, top row first, ``True`` = dark, quiet zone included.

    Raises QrDataError for a payload no symbol can carry; the caller shows the text without it.
    """
    try:
        # Encoded here, not by qrcode (which does the same UTF-8 encoding), so that a lone
        # surrogate (a broken escape in some upstream JSON) is our error, not a UnicodeEncodeError.
        payload = data.encode("utf-8")
    except UnicodeEncodeError:
        raise QrDataError("QR data is not valid Unicode text") from None
    # Imported on first use: the attract screen draws no code, and ~11 ms of imports before the
    # first screen is start-up a resident waits for.
    import qrcode  # noqa: PLC0415
    import qrcode.constants  # noqa: PLC0415
    import qrcode.exceptions  # noqa: PLC0415

    code = qrcode.QRCode(
        border=QUIET_ZONE_MODULES,
        # M (15 %) survives a smudged screen without making the code denser than needed.
        error_correction=qrcode.constants.ERROR_CORRECT_M,
    )
    code.add_data(payload)
    try:
        code.make(fit=True)
    except (qrcode.exceptions.DataOverflowError, ValueError):
        # qrcode 8.2 means DataOverflowError here, but its version setter rejects version 41
        # with a plain ValueError before best_fit gets to raise it.
        raise QrDataError(f"QR data of {len(payload)} bytes is too long for a symbol") from None
    return tuple(tuple(bool(cell) for cell in row) for row in code.get_matrix())
