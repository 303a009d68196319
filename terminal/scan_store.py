"""A session's scanned pages: held in memory only, bounded, and dropped whole when it ends.

Scans never touch the disk here, so no session ending (done, timeout, card pulled, a crash or a
power cut) can leave one behind: what must outlive the session is an application lodged with
``terminal.submissions``, which seals its own copy of the pages. ``wipe()`` is what the session's
one ending path calls. The bounds keep a resident who scans and rescans from filling the memory
of an appliance that runs for months.

Python cannot scrub the bytes of an immutable ``bytes`` object; ``wipe()`` drops every reference
the store holds, so the pages are freed with the session (terminal.memory collects at attract).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from flows.hub import ScannedPage

MAX_PAGES = 30
MAX_BYTES = 20 * 1024 * 1024  # a scanned A4 page as a compressed JPEG is 0.2-1 MB


class ScanLimitReached(Exception):
    """The page would take the session past its bounds; ``reason``: ``too_many_pages`` or
    ``too_large``. Nothing personal in the message."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class ScanTotals:
    pages: int
    bytes: int


class ScanStore:
    """The pages scanned in one session, by material and page number; thread-safe (a capture
    effect adds from a worker thread, the session's end wipes from the main thread)."""

    def __init__(self, *, max_pages: int = MAX_PAGES, max_bytes: int = MAX_BYTES) -> None:
        if max_pages < 1 or max_bytes < 1:
            raise ValueError("a scan store must hold at least one page")
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._pages: dict[tuple[str, int], ScannedPage] = {}

    def add(self, page: ScannedPage) -> None:
        """Keep ``page``; a page with the same material and number (a rescan) replaces it.
        ScanLimitReached when it would not fit; the store is then as it was."""
        if not page.jpeg:
            raise ValueError("an empty scan")
        if page.page < 1:
            raise ValueError("pages are numbered from 1")
        key = (page.material_id, page.page)
        with self._lock:
            replaced = self._pages.get(key)
            pages = len(self._pages) + (0 if replaced else 1)
            size = self._bytes() - (len(replaced.jpeg) if replaced else 0) + len(page.jpeg)
            if pages > self._max_pages:
                raise ScanLimitReached(
                    "too_many_pages", f"at most {self._max_pages} pages in one session")
            if size > self._max_bytes:
                raise ScanLimitReached(
                    "too_large", f"at most {self._max_bytes} bytes of scans in one session")
            self._pages[key] = page

    def pages(self, material_id: str | None = None) -> tuple[ScannedPage, ...]:
        """The pages kept (of one material), by material in order of first scan, then page."""
        with self._lock:
            kept = list(self._pages.values())
        order = {m: i for i, m in enumerate(dict.fromkeys(p.material_id for p in kept))}
        chosen = [p for p in kept if material_id is None or p.material_id == material_id]
        return tuple(sorted(chosen, key=lambda p: (order[p.material_id], p.page)))

    def discard(self, material_id: str, page: int | None = None) -> None:
        """Drop one page of a material, or all of its pages (the resident scans it again)."""
        with self._lock:
            for key in [k for k in self._pages if k[0] == material_id
                        and (page is None or k[1] == page)]:
                del self._pages[key]

    def totals(self) -> ScanTotals:
        with self._lock:
            return ScanTotals(len(self._pages), self._bytes())

    def wipe(self) -> None:
        """Drop every page: the session's end."""
        with self._lock:
            self._pages.clear()

    def _bytes(self) -> int:
        return sum(len(p.jpeg) for p in self._pages.values())

    def __repr__(self) -> str:
        totals = self.totals()
        return f"ScanStore(<{totals.pages} pages, {totals.bytes} bytes>)"
