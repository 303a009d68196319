"""Reads one table's rows out of a damaged SQLite file and its WAL without SQLite, page by page.

SQLite finds rows by walking a table's b-tree from its root page, so one zeroed interior page
hides every row below it although the leaf pages holding them are intact. This module ignores
the tree: it takes the newest image of every page (the main file, overridden by committed WAL
frames), parses each table leaf page on its own and keeps the records shaped like the caller's
table. Every structure follows https://www.sqlite.org/fileformat2.html ("§" below names its
sections by title: their numbers differ between versions of that page). Nothing here raises on
damaged input: what cannot be parsed is skipped.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import logging
import math
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

log = logging.getLogger(__name__)

# How a column is stored, as the caller's CREATE TABLE says (§Record Format):
# "rowid_alias" an INTEGER PRIMARY KEY (stored as NULL; its value is the rowid), "integer",
# "real" (an integral value may be stored as an integer), "text" (of the database encoding),
# "blob". None of them admits NULL: the terminal's tables declare their columns NOT NULL.
ColumnKind = Literal["rowid_alias", "integer", "real", "text", "blob"]

# The work cap, in page reads (main-file pages, WAL frames checked, overflow pages followed):
# 64 MiB of 4 KiB pages, read in 2.4 s on an x86 server core (several times that on an ARM
# board); an outbox holds a few MB (5 MB: 0.13 s, 0.24 s with a 4.8 MB WAL).
DEFAULT_MAX_PAGES = 16_384
DEFAULT_PAGE_SIZE = 4096


class SalvagedRow(NamedTuple):
    rowid: int
    values: tuple[object, ...]  # one per column, the rowid in place of a "rowid_alias" column
    pages: tuple[int, ...]  # where it was read: its leaf page, then its overflow pages


def salvage_table_rows(
    db_path: Path,
    *,
    columns: Sequence[ColumnKind],
    page_size_hint: int = DEFAULT_PAGE_SIZE,
    max_pages: int = DEFAULT_MAX_PAGES,
) -> list[SalvagedRow]:
    """Every readable record shaped like ``columns`` in ``db_path`` (and ``<db_path>-wal``),
    one per rowid (the one from the newest page image), sorted by rowid.

    ``page_size_hint`` is used when neither the database header nor a WAL header can be read.
    Reading stops after ``max_pages`` page reads; what was found until then is returned.
    """
    budget = _Budget(max_pages)
    try:
        with _open_source(db_path, page_size_hint, budget) as source:
            found = _scan(source, tuple(columns))
            wal_pages = len(source.wal.frames) if source.wal else 0
    except FileNotFoundError as error:
        log.warning("salvage: %s", error)
        return []
    if budget.exhausted:
        log.warning("salvage of %s stopped after %d page reads; rows past it are not read",
                    db_path, max_pages)
    log.info("salvage of %s: %d rows in %d page reads (%d pages taken from the WAL)",
             db_path, len(found), budget.spent, wal_pages)
    return [found[rowid] for rowid in sorted(found)]


# --- the work cap ---------------------------------------------------------------------------------


@dataclass
class _Budget:
    limit: int
    spent: int = 0

    @property
    def exhausted(self) -> bool:
        return self.spent >= self.limit

    def spend(self) -> bool:
        """Take one page read; False once the cap is reached."""
        if self.exhausted:
            return False
        self.spent += 1
        return True


# --- the database header (§The Database Header) ---------------------------------------------------

_HEADER_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100
_ENCODINGS = {1: "utf-8", 2: "utf-16-le", 3: "utf-16-be"}  # §Text encoding


@dataclass(frozen=True)
class _Layout:
    page_size: int
    usable: int  # less the reserved bytes at the end of each page (§Reserved bytes per page)
    encoding: str


def _valid_page_size(size: int) -> bool:
    return 512 <= size <= 65536 and size & (size - 1) == 0


def _parse_db_header(data: bytes) -> _Layout | None:
    """The layout the header declares, or None when any field SQLite insists on is off."""
    if len(data) < _HEADER_SIZE or data[:16] != _HEADER_MAGIC:
        return None
    raw_size = int.from_bytes(data[16:18], "big")
    page_size = 65536 if raw_size == 1 else raw_size  # §Page Size: 1 means 65536
    reserved = data[20]
    encoding = _ENCODINGS.get(int.from_bytes(data[56:60], "big"))
    # §Payload fractions: 64, 32 and 32 always; §Reserved bytes per page: 480 usable at least.
    if (not _valid_page_size(page_size) or data[21:24] != b"\x40\x20\x20"
            or page_size - reserved < 480 or encoding is None):
        return None
    return _Layout(page_size, page_size - reserved, encoding)


# --- the WAL (§WAL File Format, §Checksum Algorithm) ----------------------------------------------

_WAL_MAGIC_LE = 0x377F0682  # checksums over little-endian words
_WAL_MAGIC_BE = 0x377F0683  # checksums over big-endian words
_WAL_HEADER = struct.Struct(">8I")  # magic, version, page size, checkpoint, 2 salts, 2 checksums
_FRAME_HEADER = struct.Struct(">6I")  # page, db size after commit (or 0), 2 salts, 2 checksums
_MASK32 = 0xFFFFFFFF


@dataclass
class _Wal:
    fd: int
    page_size: int
    frames: dict[int, int] = field(default_factory=dict)  # page number -> newest committed frame
    db_pages: int | None = None  # database size in pages after the last commit

    def frame_offset(self, frame: int) -> int:
        """Where frame ``frame`` (1-based) starts in the WAL file: after the header, frames of
        a 24-byte header and one page each."""
        return _WAL_HEADER.size + (frame - 1) * (_FRAME_HEADER.size + self.page_size)

    def page(self, frame: int) -> bytes | None:
        """The page that frame ``frame`` holds, None if it cannot be read whole."""
        data = _pread(self.fd, self.page_size, self.frame_offset(frame) + _FRAME_HEADER.size)
        return data if data is not None and len(data) == self.page_size else None


def _wal_checksum(data: bytes, s0: int, s1: int, word_order: str) -> tuple[int, int]:
    """§Checksum Algorithm: Fibonacci-weighted sums of 32-bit words taken in pairs, continued
    from (s0, s1)."""
    words = struct.unpack(f"{word_order}{len(data) // 4}I", data)
    for i in range(0, len(words) - 1, 2):
        s0 = (s0 + words[i] + s1) & _MASK32
        s1 = (s1 + words[i + 1] + s0) & _MASK32
    return s0, s1


def _read_wal(fd: int, budget: _Budget) -> _Wal | None:
    """The committed frames of the WAL open at ``fd``: those with the header's salts and a valid
    running checksum, up to the last commit frame (§Reader Algorithm, "valid frames")."""
    header = _pread(fd, _WAL_HEADER.size, 0)
    if header is None or len(header) < _WAL_HEADER.size:
        return None
    magic, _version, page_size, _checkpoint, salt1, salt2, sum1, sum2 = _WAL_HEADER.unpack(header)
    if magic not in (_WAL_MAGIC_LE, _WAL_MAGIC_BE) or not _valid_page_size(page_size):
        return None
    word_order = ">" if magic == _WAL_MAGIC_BE else "<"
    if _wal_checksum(header[:24], 0, 0, word_order) != (sum1, sum2):
        return None
    wal = _Wal(fd, page_size)
    pending: dict[int, int] = {}  # frames of a transaction whose commit frame is not yet seen
    s0, s1 = sum1, sum2
    frame = 0
    while budget.spend():
        frame += 1
        data = _pread(fd, _FRAME_HEADER.size + page_size, wal.frame_offset(frame))
        if data is None or len(data) < _FRAME_HEADER.size + page_size:
            break  # the end of the file, or a tail cut short
        page, commit_size, f_salt1, f_salt2, f_sum1, f_sum2 = _FRAME_HEADER.unpack_from(data)
        if (f_salt1, f_salt2) != (salt1, salt2) or page == 0:
            break  # a frame left over from before the WAL was last reset (§WAL Reset)
        s0, s1 = _wal_checksum(data[:8] + data[_FRAME_HEADER.size:], s0, s1, word_order)
        if (s0, s1) != (f_sum1, f_sum2):
            break
        pending[page] = frame
        if commit_size:
            wal.frames.update(pending)
            wal.db_pages = commit_size
            pending.clear()
    return wal


# --- page images ----------------------------------------------------------------------------------


def _pread(fd: int, size: int, offset: int) -> bytes | None:
    """Bytes at ``offset``, fewer at the end of the file, None when the storage fails to read
    them (a failing card's bad sector must not end the salvage)."""
    try:
        return os.pread(fd, size, offset)
    except OSError:
        return None


@dataclass(frozen=True)
class _PageSource:
    """The newest image of each page: the WAL's committed frame if any, else the main file's."""

    main_fd: int | None
    wal: _Wal | None
    layout: _Layout
    page_count: int
    budget: _Budget

    def recency(self, page: int) -> int:
        """Orders images of the same row: later WAL frames are newer, the main file oldest."""
        return self.wal.frames.get(page, 0) if self.wal is not None else 0

    def page(self, page: int) -> bytes | None:
        """The newest image of ``page`` (shorter at a truncated end), or None if unreadable or
        the work cap is reached."""
        if not 1 <= page <= self.page_count or not self.budget.spend():
            return None
        if self.wal is not None and page in self.wal.frames:
            return self.wal.page(self.wal.frames[page])
        if self.main_fd is None:
            return None
        size = self.layout.page_size  # the WAL's too: _find_layout only accepts a match
        return _pread(self.main_fd, size, (page - 1) * size)


@contextlib.contextmanager
def _open_source(db_path: Path, page_size_hint: int, budget: _Budget) -> Iterator[_PageSource]:
    """The page images of ``db_path`` and its WAL; raises FileNotFoundError when neither is
    there. A file that cannot be opened is taken for absent: there is nothing to read in it."""
    main_fd = _open_if_present(db_path)
    wal_fd = _open_if_present(db_path.with_name(db_path.name + "-wal"))
    if main_fd is None and wal_fd is None:
        raise FileNotFoundError(f"neither {db_path} nor its WAL can be read")
    try:
        wal = _read_wal(wal_fd, budget) if wal_fd is not None else None
        layout = _find_layout(main_fd, wal, page_size_hint)
        yield _PageSource(main_fd, wal, layout, _count_pages(main_fd, wal, layout), budget)
    finally:
        for fd in (main_fd, wal_fd):
            if fd is not None:
                os.close(fd)


def _find_layout(main_fd: int | None, wal: _Wal | None, page_size_hint: int) -> _Layout:
    """The header of page 1's newest image, else the main file's; when neither reads, the WAL's
    page size (its header is checksummed) or the caller's hint, UTF-8 and no reserved bytes
    (what SQLite creates by default)."""
    candidates: list[bytes | None] = []
    if wal is not None and 1 in wal.frames:
        candidates.append(wal.page(wal.frames[1]))
    if main_fd is not None:
        candidates.append(_pread(main_fd, _HEADER_SIZE, 0))
    for data in candidates:
        layout = _parse_db_header(data or b"")
        # The page size cannot change in WAL mode: a header that disagrees is damaged.
        if layout is not None and (wal is None or wal.page_size == layout.page_size):
            return layout
    if wal is not None:
        fallback = wal.page_size
    else:
        fallback = page_size_hint if _valid_page_size(page_size_hint) else DEFAULT_PAGE_SIZE
    return _Layout(fallback, fallback, "utf-8")


def _count_pages(main_fd: int | None, wal: _Wal | None, layout: _Layout) -> int:
    if wal is not None and wal.db_pages is not None:
        # The last commit says how large the database is; pages past it were truncated away.
        return wal.db_pages
    if main_fd is None:
        return 0
    try:
        return math.ceil(os.fstat(main_fd).st_size / layout.page_size)
    except OSError:
        return 0


def _open_if_present(path: Path) -> int | None:
    try:
        return os.open(path, os.O_RDONLY)
    except OSError:
        return None


# --- table b-tree leaf pages (§B-tree Pages) ------------------------------------------------------

_TABLE_LEAF = 0x0D
_LEAF_HEADER_SIZE = 8
_MAX_PAYLOAD = 1_000_000_000  # SQLITE_MAX_LENGTH: a larger payload size is damage


@dataclass(frozen=True)
class _Cell:
    rowid: int
    payload_size: int
    local: bytes  # the part of the payload on the leaf page itself
    first_overflow: int  # 0 when the payload is all local


def _varint(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """§B-tree Pages (varint): 1 to 9 bytes, big-endian, 7 bits per byte while the high bit is
    set, all 8 bits of a ninth byte. Returns the value and the position after it."""
    value = 0
    for i in range(9):
        if pos + i >= end:
            return None
        byte = buf[pos + i]
        if i == 8:
            return (value << 8) | byte, pos + 9
        value = (value << 7) | (byte & 0x7F)
        if byte < 0x80:
            return value, pos + i + 1
    return None  # not reached: the ninth byte always ends a varint


def _local_size(payload_size: int, usable: int) -> int:
    """How much of a table leaf cell's payload stays on the page (§Cell Payload Overflow
    Pages): all of it up to X = U-35, else K = M + ((P-M) mod (U-4)) if that fits, else M."""
    most = usable - 35
    if payload_size <= most:
        return payload_size
    least = (usable - 12) * 32 // 255 - 23
    spill = least + (payload_size - least) % (usable - 4)
    return spill if spill <= most else least


def _leaf_cells(image: bytes, page: int, usable: int) -> Iterator[_Cell]:
    """The cells of a table leaf page, in cell-pointer order; a cell that points or reaches
    outside the page is left out. Page 1's b-tree header follows the 100-byte file header."""
    start = _HEADER_SIZE if page == 1 else 0
    end = min(usable, len(image))
    if end < start + _LEAF_HEADER_SIZE or image[start] != _TABLE_LEAF:
        return
    cell_count = int.from_bytes(image[start + 3:start + 5], "big")
    pointers_end = start + _LEAF_HEADER_SIZE + 2 * cell_count
    if pointers_end > end:
        return  # a damaged cell count: the pointers would run past the page
    for index in range(cell_count):
        at = start + _LEAF_HEADER_SIZE + 2 * index
        offset = int.from_bytes(image[at:at + 2], "big")
        if pointers_end <= offset < end:  # cell content lies after the pointer array
            cell = _parse_cell(image, offset, end, usable)
            if cell is not None:
                yield cell


def _parse_cell(image: bytes, offset: int, end: int, usable: int) -> _Cell | None:
    """A table leaf cell (§B-tree Pages, cell formats): payload size, rowid, the local payload,
    and the first overflow page number when the payload spills (§Cell Payload Overflow Pages)."""
    size = _varint(image, offset, end)
    if size is None:
        return None
    payload_size, pos = size
    key = _varint(image, pos, end)
    if key is None or not 0 < payload_size <= _MAX_PAYLOAD:
        return None
    rowid, pos = key
    if rowid >= 1 << 63:
        rowid -= 1 << 64  # a rowid is a signed 64-bit integer stored as a varint
    local = _local_size(payload_size, usable)
    overflow_end = pos + local + (4 if local < payload_size else 0)
    if overflow_end > end:
        return None
    first_overflow = int.from_bytes(image[pos + local:overflow_end], "big") \
        if local < payload_size else 0
    return _Cell(rowid, payload_size, image[pos:pos + local], first_overflow)


# --- overflow chains (§Cell Payload Overflow Pages) -----------------------------------------------


def _full_payload(cell: _Cell, source: _PageSource) -> tuple[bytes, tuple[int, ...]] | None:
    """The cell's payload with its overflow chain followed, and the overflow pages used; None
    when a link is out of range, repeats (a cycle), ends early or goes on past the payload."""
    if not cell.first_overflow:
        return cell.local, ()
    # Each overflow page: a 4-byte next-page number, then U-4 bytes of payload.
    chunk = source.layout.usable - 4
    remaining = cell.payload_size - len(cell.local)
    expected = -(-remaining // chunk)
    if expected > source.page_count:
        return None
    parts = [cell.local]
    chain: dict[int, None] = {}  # the pages in chain order, and a quick test for a cycle
    next_page = cell.first_overflow
    for _ in range(expected):
        if not 2 <= next_page <= source.page_count or next_page in chain:
            return None
        image = source.page(next_page)
        if image is None or len(image) < source.layout.usable:
            return None
        chain[next_page] = None
        parts.append(image[4:4 + min(chunk, remaining)])
        remaining -= chunk
        next_page = int.from_bytes(image[:4], "big")
    if next_page != 0:
        return None  # the last page of a chain links to nothing
    return b"".join(parts), tuple(chain)


# --- records (§Record Format) ---------------------------------------------------------------------

_FIXED_SIZES = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 6, 6: 8, 7: 8, 8: 0, 9: 0}
_INTEGER_TYPES = frozenset({1, 2, 3, 4, 5, 6, 8, 9})


def _content_size(serial_type: int) -> int | None:
    """Bytes a value of ``serial_type`` takes; None for the reserved types 10 and 11."""
    if serial_type >= 12:
        return (serial_type - 12) // 2
    return _FIXED_SIZES.get(serial_type)


def _fits(serial_type: int, kind: ColumnKind) -> bool:
    if kind == "rowid_alias":
        return serial_type == 0
    if kind == "integer":
        return serial_type in _INTEGER_TYPES
    if kind == "real":  # an integral REAL is stored as an integer, to save space (§Record Format)
        return serial_type == 7 or serial_type in _INTEGER_TYPES
    if kind == "text":
        return serial_type >= 13 and serial_type % 2 == 1
    return serial_type >= 12 and serial_type % 2 == 0  # blob


def _record_types(local: bytes, payload_size: int,
                  columns: tuple[ColumnKind, ...]) -> tuple[int, list[int]] | None:
    """Where the values start and their serial types, if the record header matches ``columns``
    and accounts for exactly ``payload_size`` bytes; None otherwise. Only the local part of the
    payload is needed: a header as narrow as the terminal's tables' always fits on the page."""
    header = _varint(local, 0, len(local))
    if header is None:
        return None
    header_size, pos = header
    if not pos <= header_size <= len(local):
        return None
    types: list[int] = []
    body_size = 0
    while pos < header_size and len(types) < len(columns):
        serial = _varint(local, pos, header_size)
        if serial is None:
            return None
        serial_type, pos = serial
        size = _content_size(serial_type)
        if size is None or not _fits(serial_type, columns[len(types)]):
            return None
        types.append(serial_type)
        body_size += size
    if pos != header_size or len(types) != len(columns) \
            or header_size + body_size != payload_size:
        return None
    return header_size, types


def _decode_value(data: bytes, serial_type: int, kind: ColumnKind,
                  encoding: str) -> tuple[bool, object]:
    """One value (§Record Format, serial types); (False, None) when it cannot be what was stored."""
    if serial_type in (8, 9):
        number: int | float = serial_type - 8
    elif serial_type <= 6:
        number = int.from_bytes(data, "big", signed=True)
    elif serial_type == 7:
        number = struct.unpack(">d", data)[0]
        if math.isnan(number):
            return False, None  # SQLite stores NaN as NULL: a NaN on disk is damage
    elif serial_type % 2 == 0:
        return True, bytes(data)
    else:
        return _decode_text(data, encoding)
    return True, float(number) if kind == "real" else number


def _decode_text(data: bytes, encoding: str) -> tuple[bool, object]:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return False, None
    # A zeroed sector or overflow page reads as NUL characters; SQLite's text functions stop
    # at a NUL and the terminal never stores one, so it is taken for damage.
    return ("\x00" not in text), text


def _decode_record(payload: bytes, types: list[int], values_at: int,
                   columns: tuple[ColumnKind, ...], *, rowid: int,
                   encoding: str) -> tuple[object, ...] | None:
    values: list[object] = []
    pos = values_at
    for serial_type, kind in zip(types, columns, strict=True):
        size = _content_size(serial_type) or 0
        if kind == "rowid_alias":
            # Stored as NULL: the rowid is its value (§Representation Of SQL Tables).
            values.append(rowid)
        else:
            ok, value = _decode_value(payload[pos:pos + size], serial_type, kind, encoding)
            if not ok:
                return None
            values.append(value)
        pos += size
    return tuple(values) if pos == len(payload) else None


# --- putting it together --------------------------------------------------------------------------


def _row_of(cell: _Cell, page: int, source: _PageSource,
            columns: tuple[ColumnKind, ...]) -> SalvagedRow | None:
    """The cell as a row of the caller's table; the header is checked before any overflow page
    is read, so other tables' records cost nothing more."""
    shape = _record_types(cell.local, cell.payload_size, columns)
    if shape is None:
        return None
    values_at, types = shape
    whole = _full_payload(cell, source)
    if whole is None or len(whole[0]) != cell.payload_size:
        return None
    payload, chain = whole
    values = _decode_record(payload, types, values_at, columns, rowid=cell.rowid,
                            encoding=source.layout.encoding)
    return None if values is None else SalvagedRow(cell.rowid, values, (page, *chain))


def _in_key_order(rows: list[SalvagedRow]) -> list[SalvagedRow]:
    """The longest run of rows with increasing rowids, in page order. A leaf keeps its cells
    sorted by key (§B-tree Pages), so a row out of order has a damaged rowid and is dropped."""
    if all(a.rowid < b.rowid for a, b in itertools.pairwise(rows)):
        return rows
    tail_keys: list[int] = []  # smallest last rowid of an increasing run of each length
    tail_rows: list[int] = []
    previous = [-1] * len(rows)
    for index, row in enumerate(rows):
        length = bisect.bisect_left(tail_keys, row.rowid)
        previous[index] = tail_rows[length - 1] if length else -1
        if length == len(tail_keys):
            tail_keys.append(row.rowid)
            tail_rows.append(index)
        else:
            tail_keys[length] = row.rowid
            tail_rows[length] = index
    kept: list[SalvagedRow] = []
    index = tail_rows[-1] if tail_rows else -1
    while index >= 0:
        kept.append(rows[index])
        index = previous[index]
    return kept[::-1]


def _rows_on_page(image: bytes, page: int, source: _PageSource,
                  columns: tuple[ColumnKind, ...]) -> list[SalvagedRow]:
    rows = [row for cell in _leaf_cells(image, page, source.layout.usable)
            if (row := _row_of(cell, page, source, columns)) is not None]
    return _in_key_order(rows)


def _scan(source: _PageSource, columns: tuple[ColumnKind, ...]) -> dict[int, SalvagedRow]:
    """Every page's newest image, leaf by leaf; a rowid seen twice keeps the newer image's row
    (pages of the main file are older than any WAL frame; among them the first page wins)."""
    found: dict[int, tuple[int, SalvagedRow]] = {}
    for page in range(1, source.page_count + 1):
        image = source.page(page)
        if image is None:
            if source.budget.exhausted:
                break
            continue
        recency = source.recency(page)
        for row in _rows_on_page(image, page, source, columns):
            held = found.get(row.rowid)
            if held is None or recency > held[0]:
                found[row.rowid] = (recency, row)
    return {rowid: row for rowid, (_recency, row) in found.items()}
