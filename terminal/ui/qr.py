"""QR code modules for a payload, as a boolean matrix the UI draws pixel-exact; pure, no Kivy."""

from __future__ import annotations

import qrcode
import qrcode.constants

QUIET_ZONE_MODULES = 4  # the standard's minimum; phone cameras struggle with less


def qr_matrix(data: str) -> tuple[tuple[bool, ...], ...]:
    """Rows of modules, top row first, ``True`` = dark, quiet zone included."""
    code = qrcode.QRCode(
        border=QUIET_ZONE_MODULES,
        # M (15 %) survives a smudged screen without making the code denser than needed.
        error_correction=qrcode.constants.ERROR_CORRECT_M,
    )
    code.add_data(data)
    code.make(fit=True)
    return tuple(tuple(bool(cell) for cell in row) for row in code.get_matrix())
