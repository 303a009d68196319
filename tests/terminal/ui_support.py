"""What the UI tests share; importing it imports neither Kivy nor the harness."""

from __future__ import annotations

# Every screen size the kiosk supports: landscape and portrait full HD, and the 7" 800x480 panel.
SIZES: list[tuple[int, int]] = [(1920, 1080), (1080, 1920), (800, 480)]


def size_params() -> list[object]:
    """``SIZES`` for ``pytest.mark.parametrize``: the 7-inch panel, where large type is hardest
    to fit, in every ``make test``; the full-HD ones marked ``long`` (``make test-long``), which
    keeps ``make test`` under ten minutes on two cores."""
    import pytest  # noqa: PLC0415 - importing this module must not need pytest (the harness)

    return [pytest.param(size, id=f"{size[0]}x{size[1]}",
                         marks=() if size == (800, 480) else pytest.mark.long)
            for size in SIZES]

