"""Finds and registers the UI font: one face with Simplified Chinese and Latin glyphs."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

FONT_NAME = "KioskSans"
FONT_ENV = "KIOSK_FONT"

# WenQuanYi Micro Hei first: its first face is Simplified Chinese. Noto's CJK .ttc opens on the
# Japanese face by default, which draws some common hanzi with Japanese glyph shapes.
CANDIDATES: tuple[Path, ...] = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJKsc-Regular.otf"),
    Path("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf"),
)


class FontMissingError(RuntimeError):
    """No CJK font: Chinese would render as empty boxes, so the UI refuses to start."""


def find_cjk_font(
    explicit: Path | None = None, candidates: Sequence[Path] = CANDIDATES
) -> Path:
    """The configured font, else ``$KIOSK_FONT``, else the first installed candidate."""
    env = os.environ.get(FONT_ENV)
    for path in (explicit, Path(env) if env else None):
        if path is not None:
            if not path.is_file():
                raise FontMissingError(f"font file {path} does not exist")
            return path
    for path in candidates:
        if path.is_file():
            return path
    raise FontMissingError("no CJK font found; install fonts-wqy-microhei or set KIOSK_FONT")


def register_font(path: Path) -> str:
    """Register ``path`` with Kivy under ``FONT_NAME`` and return the name."""
    # Imported here: finding the font must work before (and without) Kivy being configured.
    from kivy.core.text import LabelBase  # noqa: PLC0415

    # No bold: WenQuanYi has no bold face and Kivy's SDL2 text provider does not embolden (bold=True
    # drew the very same pixels from a second open copy of the font), so the UI ranks text by size
    # and colour alone. fn_bold still points at the face, should a caller ask for bold anyway.
    LabelBase.register(FONT_NAME, fn_regular=str(path), fn_bold=str(path))
    log.info("UI font: %s", path)
    return FONT_NAME
