"""Salvaging outbox rows from damaged SQLite files and WALs by reading the file format directly.

Every database is a real outbox written through terminal.outbox.Outbox, so the schema and the
write pattern are the product's. What should come back is worked out with SQLite itself, on an
undamaged copy: its rows, and (through the dbstat virtual table) which leaf and overflow pages
hold each row, so a test can say exactly which rows a damaged page takes with it.
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devices.base import DeviceState
from terminal.outbox import REPLACED, Outbox
from terminal.sqlite_salvage import ColumnKind, SalvagedRow, salvage_table_rows

COLUMNS: tuple[ColumnKind, ...] = ("rowid_alias", "text", "integer", "text", "real")
PAGE = 4096  # SQLite's default page size, which the outbox keeps
Row = tuple[object, ...]  # (id, kind, seq, payload, created_at), as SELECT * returns it
_WORDS = ("Antrag", "Ærøskøbing café", "東京都庁 ✓", "bus 🚌 🙂", "Ελληνικά", "plain ascii")


# --- writing outboxes -----------------------------------------------------------------------------


def _payload(number: int, rng: random.Random) -> str:
    """JSON of varied size: mostly small, every so often 10 kB (spilling onto overflow pages)."""
    size = 10_000 if rng.random() < 0.06 else rng.choice((20, 60, 150, 400, 900, 1800))
    text = ""
    while len(text) < size:
        text += rng.choice(_WORDS) + " "
    return json.dumps({"n": number, "text": text[:size]}, ensure_ascii=False)


@dataclass
class Written:
    """Every version of every row a test wrote (a moved item has two), by id."""

    versions: dict[int, list[Row]]

    def is_a_version(self, row: SalvagedRow) -> bool:
        return row.values in self.versions.get(row.rowid, [])


def _exercise(outbox: Outbox, written: Written, count: int, rng: random.Random) -> None:
    """``count`` puts; then about one item in six delivered and one in eleven moved aside."""
    ids = []
    for number in range(count):
        item = outbox.put(rng.choice(("event", "event", "hub_submission")),
                          _payload(number, rng))
        assert item is not None
        written.versions[item.id] = [(item.id, item.kind, item.seq, item.payload_json,
                                      item.created_at)]
        ids.append(item.id)
    for item_id in rng.sample(ids, len(ids) // 6):
        outbox.mark_done(item_id)
    for item_id in rng.sample(ids, len(ids) // 11):
        outbox.move(item_id, "kept")
        old = written.versions[item_id][-1]
        written.versions[item_id].append((old[0], "kept", *old[2:]))


def _write_outbox(path: Path, count: int = 300, seed: int = 1) -> Written:
    written = Written({})
    outbox = Outbox(path)
    _exercise(outbox, written, count, random.Random(seed))
    outbox.close()  # checkpoints: everything is in the main file, and no WAL is left
    return written


def _copy(path: Path, directory: Path) -> Path:
    """``path`` and its WAL (if any) copied into ``directory``, as a terminal would leave them."""
    directory.mkdir(exist_ok=True)
    for suffix in ("", "-wal"):
        source = path.with_name(path.name + suffix)
        if source.exists():
            shutil.copyfile(source, directory / source.name)
    return directory / path.name


# --- what SQLite says about an undamaged copy -----------------------------------------------------


def _live(path: Path, scratch: Path) -> dict[int, Row]:
    """The rows SQLite reads from a copy of ``path`` (and its WAL): SQLite may checkpoint and
    remove the WAL when it closes, so it never opens a file a test goes on to use."""
    copy = _copy(path, scratch)
    with sqlite3.connect(copy) as db:
        rows = db.execute("SELECT id, kind, seq, payload, created_at FROM outbox").fetchall()
    db.close()
    return {int(row[0]): tuple(row) for row in rows}


@dataclass(frozen=True)
class Place:
    leaf: int
    overflow: tuple[int, ...]

    @property
    def pages(self) -> set[int]:
        return {self.leaf, *self.overflow}


def _places(path: Path) -> dict[int, Place]:
    """Where each row of an undamaged outbox lives. dbstat lists the table's leaves in key
    order with their cell counts, and names an overflow page after its leaf's path, the cell's
    index and its place in the chain ('/003/001+000002'); rows in id order fill the leaves."""
    with sqlite3.connect(path) as db:
        stat = db.execute("SELECT path, pageno, pagetype, ncell FROM dbstat "
                          "WHERE name = 'outbox' ORDER BY path").fetchall()
        ids = iter([row[0] for row in db.execute("SELECT id FROM outbox ORDER BY id")])
    db.close()
    overflow = {str(p): int(n) for p, n, kind, _ in stat if kind == "overflow"}
    places = {}
    for leaf_path, page, kind, cells in stat:
        if kind != "leaf":
            continue
        for cell in range(cells):
            chain: list[int] = []
            while (link := overflow.get(f"{leaf_path}{cell:03x}+{len(chain):06x}")) is not None:
                chain.append(link)
            places[next(ids)] = Place(int(page), tuple(chain))
    return places


# --- damaging files -------------------------------------------------------------------------------


def _zero_page(path: Path, page: int) -> None:
    with path.open("r+b") as file:
        file.seek((page - 1) * PAGE)
        file.write(bytes(PAGE))


def _salvaged(path: Path, **options: int) -> dict[int, Row]:
    rows = salvage_table_rows(path, columns=COLUMNS, **options)
    assert [r.rowid for r in rows] == sorted({r.rowid for r in rows})  # sorted, one per id
    assert all(r.values[0] == r.rowid for r in rows)
    return {r.rowid: r.values for r in rows}


@pytest.fixture
def outbox_file(tmp_path: Path) -> Iterator[tuple[Path, Written, dict[int, Row]]]:
    path = tmp_path / "outbox.sqlite3"
    written = _write_outbox(path)
    yield path, written, _live(path, tmp_path / "truth")


# --- the main file --------------------------------------------------------------------------------


def test_an_intact_outbox_reads_exactly_as_sqlite_reads_it(
        outbox_file: tuple[Path, Written, dict[int, Row]]) -> None:
    # 300 written, 50 delivered (deleted, zeroed by SECURE_DELETE), 27 moved: 250 live rows,
    # some on overflow pages, with non-ASCII text; outbox_seq and sqlite_sequence rows, index and
    # schema pages are all left out by shape or page type.
    path, written, live = outbox_file
    places = _places(path)
    assert len(live) == 250 and any(place.overflow for place in places.values())
    assert _salvaged(path) == live
    assert all(written.versions[i][-1] == row for i, row in live.items())


def test_a_zeroed_root_page_loses_no_row(
        outbox_file: tuple[Path, Written, dict[int, Row]]) -> None:
    # The table's root (page 2) is zeroed: SQLite cannot reach a single row any more, but every
    # leaf is intact.
    path, _written, live = outbox_file
    _zero_page(path, 2)
    with sqlite3.connect(path) as db, pytest.raises(sqlite3.DatabaseError):
        db.execute("SELECT * FROM outbox").fetchall()
    db.close()
    assert _salvaged(path) == live


@pytest.mark.parametrize("which", ["leaf", "first_overflow", "last_overflow"])
def test_a_zeroed_page_loses_only_the_rows_on_it(
        outbox_file: tuple[Path, Written, dict[int, Row]], which: str) -> None:
    # One page zeroed: a leaf in the middle of the table takes its rows with it; an overflow
    # page takes the one row whose chain it is in. A zeroed last page of a chain still links
    # to nothing, as a sound one does: its NUL bytes give it away.
    path, _written, live = outbox_file
    places = _places(path)
    long_rows = [place for place in places.values() if len(place.overflow) >= 2]
    page = {
        "leaf": sorted({place.leaf for place in places.values()})[len(places) // 20],
        "first_overflow": long_rows[0].overflow[0],
        "last_overflow": long_rows[0].overflow[-1],
    }[which]
    _zero_page(path, page)
    lost = {i for i, place in places.items() if page in place.pages}
    assert lost
    assert _salvaged(path) == {i: row for i, row in live.items() if i not in lost}


def test_a_zeroed_header_page_falls_back_to_the_page_size_hint(
        outbox_file: tuple[Path, Written, dict[int, Row]]) -> None:
    # Page 1 (file header and schema) zeroed: the page size comes from the caller.
    path, _written, live = outbox_file
    _zero_page(path, 1)
    assert _salvaged(path, page_size_hint=PAGE) == live


def test_a_file_cut_short_mid_page_keeps_every_row_before_the_cut(
        outbox_file: tuple[Path, Written, dict[int, Row]]) -> None:
    # The file ends 1000 bytes into a leaf page near its end: rows wholly on earlier pages come
    # back; none on a lost page does; rows on the cut page only if their cell was before it.
    path, _written, live = outbox_file
    places = _places(path)
    cut_page = sorted({place.leaf for place in places.values()})[-3]
    with path.open("r+b") as file:
        file.truncate((cut_page - 1) * PAGE + 1000)
    salvaged = _salvaged(path)
    whole = {i for i, place in places.items() if max(place.pages) < cut_page}
    lost = {i for i, place in places.items() if max(place.pages) > cut_page}
    assert whole <= salvaged.keys() and not lost & salvaged.keys()
    assert all(live[i] == row for i, row in salvaged.items())


def test_garbage_appended_to_the_file_changes_nothing(
        outbox_file: tuple[Path, Written, dict[int, Row]]) -> None:
    # Two and a half pages of random bytes after the last page: a partial page and pages that
    # are no b-tree leaves, so nothing more (and nothing less) comes back.
    path, _written, live = outbox_file
    with path.open("ab") as file:
        file.write(random.Random(7).randbytes(PAGE * 5 // 2))
    assert _salvaged(path) == live


@pytest.mark.parametrize("link", ["itself", "its_leaf", "past_the_end", "back_to_the_first"])
def test_a_broken_overflow_chain_loses_only_its_row(
        outbox_file: tuple[Path, Written, dict[int, Row]], link: str) -> None:
    # The next-page link of a chain's second page is rewritten: into a cycle, to a b-tree page,
    # or past the end of the file. The reader gives that row up and carries on.
    path, _written, live = outbox_file
    places = _places(path)
    victim, place = next((i, p) for i, p in places.items() if len(p.overflow) >= 3)
    target = {"itself": place.overflow[1], "its_leaf": place.leaf,
              "past_the_end": 1_000_000, "back_to_the_first": place.overflow[0]}[link]
    with path.open("r+b") as file:
        file.seek((place.overflow[1] - 1) * PAGE)
        file.write(target.to_bytes(4, "big"))
    assert _salvaged(path) == {i: row for i, row in live.items() if i != victim}


def test_the_work_cap_ends_a_long_read_with_what_was_found(
        outbox_file: tuple[Path, Written, dict[int, Row]]) -> None:
    # A cap of 40 page reads on a 136-page file: the rows of the first pages, exact, and no more.
    path, _written, live = outbox_file
    salvaged = _salvaged(path, max_pages=40)
    assert 0 < len(salvaged) < len(live)
    assert all(live[i] == row for i, row in salvaged.items())


def test_a_missing_or_foreign_file_gives_nothing(tmp_path: Path) -> None:
    # No file at all, and a file of text (no header, no leaf page): no rows, no exception.
    assert salvage_table_rows(tmp_path / "absent.sqlite3", columns=COLUMNS) == []
    (tmp_path / "text.sqlite3").write_bytes(b"this is not a database" * 1000)
    assert salvage_table_rows(tmp_path / "text.sqlite3", columns=COLUMNS) == []


# --- the WAL --------------------------------------------------------------------------------------


@pytest.fixture
def left_behind(tmp_path: Path) -> tuple[Path, Written]:
    """An outbox as a process that did not close it leaves it: 300 items checkpointed into the
    main file, then 80 more puts, deliveries and moves only in the WAL (copied while open)."""
    path = tmp_path / "outbox.sqlite3"
    written = _write_outbox(path)
    outbox = Outbox(path)
    _exercise(outbox, written, 80, random.Random(2))
    copy = _copy(path, tmp_path / "left")
    outbox.close()
    assert copy.with_name(copy.name + "-wal").stat().st_size > 100 * PAGE
    return copy, written


def _pages_in_wal(path: Path) -> set[int]:
    """The page numbers of a WAL's frames: a 32-byte header, then a 24-byte frame header (page
    number first) and a page per frame. Every frame of these tests' WALs is committed."""
    data = path.with_name(path.name + "-wal").read_bytes()
    return {int.from_bytes(data[at:at + 4], "big") for at in range(32, len(data), 24 + PAGE)}


@pytest.mark.parametrize("damaged", ["root", "header", "every_page_the_wal_holds"])
def test_a_wal_left_behind_gives_the_rows_of_its_last_commit(
        left_behind: tuple[Path, Written], tmp_path: Path, damaged: str) -> None:
    # The main file's root page, its header page, or every page the WAL holds a newer image of
    # is zeroed: those images come from the WAL's committed frames, so the rows are exactly
    # those SQLite reads from the undamaged pair, moved items in their new kind included.
    path, written = left_behind
    live = _live(path, tmp_path / "truth")
    assert any(len(versions) == 2 and i in live for i, versions in written.versions.items())
    pages = {"root": {2}, "header": {1}, "every_page_the_wal_holds": _pages_in_wal(path)}[damaged]
    for page in pages:
        _zero_page(path, page)
    assert _salvaged(path) == live


@pytest.mark.parametrize("damage", ["cut_mid_frame", "flipped_frame"])
def test_a_damaged_wal_is_read_up_to_its_last_sound_commit(
        left_behind: tuple[Path, Written], tmp_path: Path, damage: str) -> None:
    # The WAL is cut in the middle of a frame, or one byte of a frame's page is flipped (its
    # checksum fails): frames from there on, and those of the transaction cut through, are not
    # used, exactly as SQLite itself reads the same pair. The main file's root is zeroed too.
    path, _written = left_behind
    full = _live(path, tmp_path / "full")
    wal = path.with_name(path.name + "-wal")
    middle = 32 + (wal.stat().st_size // (24 + PAGE) // 2) * (24 + PAGE) + 24 + 100
    with wal.open("r+b") as file:
        if damage == "cut_mid_frame":
            file.truncate(middle)
        else:
            file.seek(middle)
            byte = file.read(1)
            file.seek(middle)
            file.write(bytes([byte[0] ^ 0x40]))
    live = _live(path, tmp_path / "truth")
    assert live != full  # transactions were lost
    _zero_page(path, 2)
    assert _salvaged(path) == live


# --- anything at all ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    db: bytes
    wal: bytes
    written: Written


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    directory = tmp_path_factory.mktemp("pair")
    path = directory / "outbox.sqlite3"
    written = _write_outbox(path, count=150)
    outbox = Outbox(path)
    _exercise(outbox, written, 40, random.Random(3))
    copy = _copy(path, directory / "left")
    outbox.close()
    return Pair(copy.read_bytes(), copy.with_name(copy.name + "-wal").read_bytes(), written)


_FLIPS = st.lists(st.tuples(st.booleans(), st.integers(0, 2**32), st.integers(1, 255)),
                  max_size=80)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flips=_FLIPS, wal_cut=st.none() | st.integers(0, 2**32))
def test_flipped_bytes_never_raise_nor_invent_a_row(
        pair: Pair, tmp_path_factory: pytest.TempPathFactory,
        flips: list[tuple[bool, int, int]], wal_cut: int | None) -> None:
    # Bytes flipped anywhere in the main file and the WAL, and the WAL perhaps cut short. No
    # reader can tell a flipped byte inside a value from the value (SQLite returns it too: the
    # format has no checksums outside the WAL), so the property is: every row returned is a
    # version that was written for its id, unless one of the pages it was read from was hit.
    db, wal = bytearray(pair.db), bytearray(pair.wal)
    hit_pages = set()
    for in_wal, offset, mask in flips:
        target = wal if in_wal else db
        target[offset % len(target)] ^= mask
        if not in_wal:
            hit_pages.add(offset % len(db) // PAGE + 1)
    if wal_cut is not None:
        del wal[wal_cut % len(wal):]
    directory = tmp_path_factory.mktemp("flipped")
    (directory / "outbox.sqlite3").write_bytes(db)
    (directory / "outbox.sqlite3-wal").write_bytes(wal)
    started = time.monotonic()
    rows = salvage_table_rows(directory / "outbox.sqlite3", columns=COLUMNS)
    assert time.monotonic() - started < 10
    header_hit = any(not in_wal and offset % len(db) < 100 for in_wal, offset, _ in flips)
    for row in rows:
        assert row.values[0] == row.rowid and isinstance(row.values[3], str)
        assert pair.written.is_a_version(row) or header_hit or hit_pages & set(row.pages), row
    shutil.rmtree(directory)


# --- the outbox -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seq_file", ["kept", "lost"])
def test_an_outbox_with_a_zeroed_root_comes_back_whole(
        outbox_file: tuple[Path, Written, dict[int, Row]], seq_file: str) -> None:
    # The outbox's root page is zeroed: it fails its integrity check at start, is set aside, and
    # every pending item comes back in order with its seq and payload from the leaf pages; a new
    # item's seq continues past all of them, even when the seq file beside it is lost too.
    path, _written, live = outbox_file
    _zero_page(path, 2)
    if seq_file == "lost":
        path.with_name(path.name + ".seq").unlink()
    outbox = Outbox(path)
    for kind in ("event", "hub_submission", "kept"):
        expected = sorted(row for row in live.values() if row[1] == kind)
        pending = outbox.pending(kind, limit=1000)
        assert [(i.id, i.kind, i.seq, i.payload_json, i.created_at) for i in pending] == expected
    assert outbox.health() == DeviceState.degraded(REPLACED)
    assert len(list(path.parent.glob("outbox.sqlite3.damaged-*"))) == 1
    item = outbox.put("event", "{}")
    assert item is not None
    assert item.seq > max(i.seq for i in outbox.pending("event", limit=1000) if i != item)
    outbox.close()
