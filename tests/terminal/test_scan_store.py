"""A session's scans: kept in memory only, in order, bounded with a clear error, dropped whole by
``wipe``, and never written anywhere on disk."""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path

import pytest

from flows.hub import ScannedPage
from terminal.scan_store import MAX_BYTES, MAX_PAGES, ScanLimitReached, ScanStore


def page(material: str, number: int, size: int = 1000) -> ScannedPage:
    return ScannedPage(material, number, bytes([number % 256]) * size)


def test_pages_are_kept_by_material_in_order_and_a_rescan_replaces() -> None:
    store = ScanStore()
    store.add(page("id_card_copy", 2))
    store.add(page("household_register", 1))
    store.add(page("id_card_copy", 1))
    store.add(page("id_card_copy", 2, size=500))  # scanned again
    assert [(p.material_id, p.page, len(p.jpeg)) for p in store.pages()] == [
        ("id_card_copy", 1, 1000), ("id_card_copy", 2, 500), ("household_register", 1, 1000)]
    assert [p.page for p in store.pages("id_card_copy")] == [1, 2]
    assert store.totals().pages == 3
    assert store.totals().bytes == 2500
    store.discard("id_card_copy", 2)
    assert [p.page for p in store.pages("id_card_copy")] == [1]
    store.discard("id_card_copy")
    assert [p.material_id for p in store.pages()] == ["household_register"]


def test_the_defaults_hold_a_long_application() -> None:
    assert (MAX_PAGES, MAX_BYTES) == (30, 20 * 1024 * 1024)


def test_one_page_too_many_is_refused_with_a_reason_and_the_store_is_unchanged() -> None:
    store = ScanStore(max_pages=3, max_bytes=10_000)
    for n in range(1, 4):
        store.add(page("m", n))
    with pytest.raises(ScanLimitReached) as refused:
        store.add(page("m", 4))
    assert refused.value.reason == "too_many_pages"
    assert "3 pages" in str(refused.value)
    assert [p.page for p in store.pages()] == [1, 2, 3]
    store.add(page("m", 3, size=2000))  # a rescan of a kept page is not one more page
    assert store.totals().pages == 3


def test_too_many_bytes_is_refused_with_a_reason_and_the_store_is_unchanged() -> None:
    store = ScanStore(max_pages=30, max_bytes=10_000)
    store.add(page("m", 1, size=6000))
    with pytest.raises(ScanLimitReached) as refused:
        store.add(page("m", 2, size=5000))
    assert refused.value.reason == "too_large"
    assert store.totals().bytes == 6000
    store.add(page("m", 1, size=9000))  # replacing frees the old page's bytes first
    assert store.totals().bytes == 9000


def test_empty_or_misnumbered_pages_are_refused() -> None:
    store = ScanStore()
    with pytest.raises(ValueError):
        store.add(ScannedPage("m", 1, b""))
    with pytest.raises(ValueError):
        store.add(ScannedPage("m", 0, b"x"))


def test_wipe_drops_everything_and_the_repr_shows_no_content() -> None:
    store = ScanStore()
    store.add(page("id_card_copy", 1))
    assert "\x01" not in repr(store)
    assert "1 pages" in repr(store)
    store.wipe()
    assert store.pages() == ()
    assert store.totals().pages == store.totals().bytes == 0
    store.wipe()  # twice is harmless: every ending path may call it


def test_adding_from_a_worker_while_the_session_ends_leaves_a_consistent_store() -> None:
    store = ScanStore(max_pages=30, max_bytes=10**7)
    stop = threading.Event()

    def capture() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with contextlib.suppress(ScanLimitReached):
                store.add(page("m", n % 30 + 1, size=100))

    worker = threading.Thread(target=capture)
    worker.start()
    for _ in range(200):
        store.wipe()
        totals = store.totals()
        assert totals.bytes == 100 * totals.pages
    stop.set()
    worker.join()
    store.wipe()
    assert store.totals().pages == 0


def test_scans_are_never_written_to_disk_and_wipe_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every ending (done, timeout, card pulled, cancel, flow error) reaches the store only as
    # wipe(); the engine-level test of each ending is the session engine's. Here: everywhere a
    # careless store could write, the working directory and the temp directory, stays as it was.
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    before = sorted(os.walk(tmp_path))
    store = ScanStore()
    scans = [ScannedPage("id_card_copy", n, os.urandom(200_000)) for n in range(1, 6)]
    for scan in scans:
        store.add(scan)
    assert sorted(os.walk(tmp_path)) == before  # nothing written while the session runs
    store.wipe()  # the engine's one ending path, whichever ending it was
    assert store.pages() == ()
    assert sorted(os.walk(tmp_path)) == before
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert not any(scan.jpeg[:64] in path.read_bytes() for scan in scans)
