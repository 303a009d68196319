"""Lets Kivy's SDL2 text provider drop each label's pixels once it has handed them to the texture.

Kivy 2.3's ``LabelSDL2`` renders a label into an SDL surface, copies the pixels out of it for the
texture, and then keeps the surface for as long as the label lives: a second, CPU-side copy of
every piece of text on screen, and of every screen still waiting for the garbage collector.
Measured at 1920x1080: 3.9 MB on the attract screen alone, 12 MB by the errand menu. The surface
is never read again (the next render makes a new one), so it is released as soon as the copy is
taken.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)

_PATCHED = "_kiosk_releases_pixels"


def release_label_pixels() -> bool:
    """Patch the text provider in use; False, and nothing changed, if it is not Kivy's SDL2 one.

    Call after Kivy is configured (importing its text provider opens it).
    """
    from kivy.core.text import Label as CoreLabel  # noqa: PLC0415 - Kivy must be configured first

    provider: Any = CoreLabel
    if getattr(provider, _PATCHED, False):
        return True
    # Only the provider whose behaviour was measured: another one (PIL, Pango) keeps its own state.
    if provider.__name__ != "LabelSDL2" or "_render_end" not in vars(provider):
        log.info("text provider %s keeps its pixels as Kivy made it", provider.__name__)
        return False
    keep_render_end = provider._render_end

    def _render_end(self: Any) -> Any:
        try:
            return keep_render_end(self)  # an ImageData holding its own copy of the pixels
        finally:
            self._surface = None

    provider._render_end = _render_end
    setattr(provider, _PATCHED, True)
    return True
