"""What the UI tests share; importing it imports neither Kivy nor the harness."""

from __future__ import annotations

# Every screen size the kiosk supports: landscape and portrait full HD, and the 7" 800x480 panel.
SIZES: list[tuple[int, int]] = [(1920, 1080), (1080, 1920), (800, 480)]
