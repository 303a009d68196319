"""Personal data at rest: AES-256-GCM records under a key file only the service user can read.

``Sealer`` holds the key and seals bytes; ``SealedStore`` keeps sealed records as files in one
directory, each written durably (temporary file, fsync, rename, fsync of the directory) so that a
power cut leaves the whole record or none of it, and a record is only ever said to be stored once
it is on the disk.

A record is ``MAGIC | key id (8) | nonce (12) | ciphertext and tag``. The associated data is the
header, the record's kind and its id, so a record renamed into another's place (a case swapped
for another, a report passed off as a case) fails authentication like a flipped byte does. The
key id (a hash of the key, which tells nothing about it) says which key sealed a record: after a
key file was lost and made anew, old records report ``wrong_key`` rather than "damaged", and they
are kept for a technician, never deleted.

The key file: 32 random bytes, mode 0600, owned by the service user, created at first start by
writing a temporary file and hard-linking it into place, so a key is never half-written and an
existing key is never replaced (replacing it would make every stored record unreadable). A key
file that group or others may read, or that is not a plain file of the service user, is refused:
the records it protects would be as readable as it is.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from terminal.sqlite_store import free_bytes

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

log = logging.getLogger(__name__)

KEY_FILE = "sealing.key"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's standard nonce; random per record (2^-32 collision bound is far off)
KEY_ID_BYTES = 8
MAGIC = b"KSR1"  # kiosk sealed record, format 1
HEADER_BYTES = len(MAGIC) + KEY_ID_BYTES + NONCE_BYTES
TAG_BYTES = 16
# cryptography refuses more than 2^31 - 1 bytes per call; records are far smaller (a case's pages
# are capped by the scan store), so anything near this is a bug, not an application.
MAX_PLAINTEXT_BYTES = 256 * 1024 * 1024
# A record file is named "<id>.<kind>"; both parts end up in paths, so keep them plain.
_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
_KIND = re.compile(r"[a-z][a-z_]{0,31}")
_TMP_SUFFIX = ".tmp"


class SealError(Exception):
    """Base of sealing errors; ``reason`` is a stable code. Messages never hold record content."""

    reason = "seal_error"

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        if reason is not None:
            self.reason = reason


class KeyFileRefused(SealError):
    """The key file exists but must not be used: others may read it, or it is not a key."""

    reason = "key_file_refused"


class RecordUnreadable(SealError):
    """A stored record cannot be opened; it is kept for a technician, never deleted."""

    reason = "unreadable"


class RecordDamaged(RecordUnreadable):
    """Not a whole record: cut short (a half-written file) or not a sealed record at all."""

    reason = "damaged"


class WrongKey(RecordUnreadable):
    """Sealed under another key (the key file was lost and made anew, or copied from elsewhere)."""

    reason = "wrong_key"


class AuthenticationFailed(RecordUnreadable):
    """The record does not authenticate: altered, damaged inside, or moved into another's place."""

    reason = "auth_failed"


class StorageRefused(SealError):
    """A record could not be stored; nothing of it was left behind. ``reason``: ``disk_full``,
    ``too_large`` or ``io_error``."""

    reason = "io_error"


# --- the key -----------------------------------------------------------------------------------


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, made there first if there is none; KeyFileRefused if it is unsafe."""
    try:
        return _read_key(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(KEY_BYTES)  # what AESGCM.generate_key does, without importing it here
    tmp = path.with_name(f".{path.name}{_TMP_SUFFIX}")
    # A temporary key left by a crash was never linked into place, so it never sealed anything.
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link, not rename: it fails if a key appeared meanwhile instead of replacing it.
        os.link(tmp, path)
    except FileExistsError:
        tmp.unlink()
        return _read_key(path)
    tmp.unlink()
    _fsync_directory(path.parent)
    log.warning("made a new sealing key %s (id %s)", path, key_id(key).hex())
    return key


def _read_key(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)  # a symlink could point anywhere
    try:
        info = os.fstat(fd)  # of the file opened, not of whatever the name points at later
        if not stat.S_ISREG(info.st_mode):
            raise KeyFileRefused(f"key file {path} is not a regular file; not used")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise KeyFileRefused(
                f"key file {path} can be read or written by group or others (mode {mode:04o}); "
                f"not used. It must be 0600 and belong to the service user: chmod 600 it, and "
                f"ask who could have read it"
            )
        if info.st_uid != os.geteuid():
            raise KeyFileRefused(
                f"key file {path} belongs to uid {info.st_uid}, not to the service user "
                f"(uid {os.geteuid()}); not used"
            )
        key = os.read(fd, KEY_BYTES + 1)
    finally:
        os.close(fd)
    if len(key) != KEY_BYTES:
        raise KeyFileRefused(f"key file {path} does not hold a {KEY_BYTES}-byte key; not used")
    return key


def key_id(key: bytes) -> bytes:
    """A short name for a key that tells nothing about it: which key sealed a record."""
    return hashlib.sha256(b"kiosk sealing key id\0" + key).digest()[:KEY_ID_BYTES]


# --- sealing -----------------------------------------------------------------------------------


class Sealer:
    """Seals and opens bytes under one key; thread-safe (each call is independent)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"a sealing key is {KEY_BYTES} bytes")
        self._key = key
        self._cipher: AESGCM | None = None
        self.key_id = key_id(key)

    @property
    def _aead(self) -> AESGCM:
        # Imported at the first seal or open, not at start: the cryptography package is ~7 MB of
        # resident memory that a terminal nobody lodges an application at never needs.
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # noqa: PLC0415

            self._cipher = AESGCM(self._key)
        return self._cipher

    @classmethod
    def from_key_file(cls, path: Path) -> Sealer:
        """The sealer of the terminal's key file, made at first start; KeyFileRefused if unsafe."""
        return cls(load_or_create_key(path))

    def seal(self, kind: str, record_id: str, plaintext: bytes) -> bytes:
        if len(plaintext) > MAX_PLAINTEXT_BYTES:
            raise StorageRefused("record too large to seal", reason="too_large")
        header = MAGIC + self.key_id + os.urandom(NONCE_BYTES)
        nonce = header[-NONCE_BYTES:]
        return header + self._aead.encrypt(nonce, plaintext, _associated(header, kind, record_id))

    def unseal(self, kind: str, record_id: str, sealed: bytes) -> bytes:
        """The plaintext; RecordDamaged, WrongKey or AuthenticationFailed if it cannot be."""
        if len(sealed) < HEADER_BYTES + TAG_BYTES or not sealed.startswith(MAGIC):
            raise RecordDamaged(f"{kind} {record_id}: not a whole sealed record "
                                f"({len(sealed)} bytes)")
        header = sealed[:HEADER_BYTES]
        sealed_by = header[len(MAGIC):len(MAGIC) + KEY_ID_BYTES]
        if sealed_by != self.key_id:
            raise WrongKey(f"{kind} {record_id}: sealed under key {sealed_by.hex()}, "
                           f"this terminal's key is {self.key_id.hex()}")
        try:
            return self._aead.decrypt(header[-NONCE_BYTES:], sealed[HEADER_BYTES:],
                                      _associated(header, kind, record_id))
        except _invalid_tag():
            raise AuthenticationFailed(
                f"{kind} {record_id}: fails authentication (altered, damaged, or not this "
                f"record)") from None


def _associated(header: bytes, kind: str, record_id: str) -> bytes:
    # Both names are checked plain identifiers, so "\0" cannot occur inside either.
    return header + kind.encode("ascii") + b"\0" + record_id.encode("ascii")


# --- a directory of sealed records ------------------------------------------------------------


@dataclass(frozen=True)
class RecordFile:
    """A stored record as the directory shows it: nothing of its content."""

    kind: str
    record_id: str
    size: int
    stored_at: float  # seconds since the epoch (the file's modification time)


FreeBytes = Callable[[Path], int | None]  # bytes still free on a directory's filesystem


class SealedStore:
    """Sealed records as files ``<id>.<kind>`` in ``directory``; shelves are subdirectories.

    ``put`` refuses (StorageRefused, ``disk_full``) when the record and ``reserve_bytes`` would
    not fit, so the disk keeps room for the databases and logs the terminal also needs, and a
    write that still fails leaves no part of the record behind.
    """

    def __init__(
        self,
        directory: Path,
        sealer: Sealer,
        *,
        reserve_bytes: int = 0,
        free: FreeBytes = free_bytes,
    ) -> None:
        self.directory = directory
        self._sealer = sealer
        self._reserve_bytes = reserve_bytes
        self._free = free
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        self._remove_partial_writes()

    def path_of(self, kind: str, record_id: str, shelf: str = "") -> Path:
        _check_names(kind, record_id)
        base = self.directory / shelf if shelf else self.directory
        return base / f"{record_id}.{kind}"

    def put(self, kind: str, record_id: str, plaintext: bytes) -> int:
        """Seal and store a record durably; return its size on disk. A record with this name is
        replaced. StorageRefused when it cannot be stored (nothing is left of it then)."""
        path = self.path_of(kind, record_id)
        sealed = self._sealer.seal(kind, record_id, plaintext)
        free = self._free(self.directory)
        if free is not None and free < len(sealed) + self._reserve_bytes:
            raise StorageRefused(
                f"disk full: {len(sealed)} bytes to store, {free} free, "
                f"{self._reserve_bytes} kept in reserve", reason="disk_full")
        tmp = path.with_name(f".{path.name}{_TMP_SUFFIX}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            try:
                view = memoryview(sealed)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
            _fsync_directory(self.directory)
        except OSError as error:
            with contextlib.suppress(OSError):
                tmp.unlink()
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                raise StorageRefused("disk full while storing a record",
                                     reason="disk_full") from None
            raise StorageRefused(f"storing a record failed: {error.strerror}",
                                 reason="io_error") from None
        return len(sealed)

    def get(self, kind: str, record_id: str, shelf: str = "") -> bytes:
        """The plaintext; FileNotFoundError if there is no such record, RecordUnreadable if it
        cannot be opened (the file stays where it is)."""
        sealed = self.path_of(kind, record_id, shelf).read_bytes()
        return self._sealer.unseal(kind, record_id, sealed)

    def exists(self, kind: str, record_id: str, shelf: str = "") -> bool:
        return self.path_of(kind, record_id, shelf).is_file()

    def delete(self, kind: str, record_id: str) -> None:
        """Remove a record for good (deleting twice is harmless)."""
        with contextlib.suppress(FileNotFoundError):
            self.path_of(kind, record_id).unlink()
            _fsync_directory(self.directory)

    def set_aside(self, kind: str, record_id: str, shelf: str) -> Path:
        """Move a record, still sealed, onto ``shelf`` for a technician; return its new path."""
        if not _KIND.fullmatch(shelf):
            raise ValueError("a shelf is a plain lower-case name")
        target = self.path_of(kind, record_id, shelf)
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.replace(self.path_of(kind, record_id), target)
        _fsync_directory(target.parent)
        _fsync_directory(self.directory)
        return target

    def records(self, kind: str | None = None, shelf: str = "") -> list[RecordFile]:
        """The records stored (on ``shelf``), of ``kind`` or all, in no particular order."""
        base = self.directory / shelf if shelf else self.directory
        found: list[RecordFile] = []
        try:
            entries = list(os.scandir(base))
        except FileNotFoundError:
            return []
        for entry in entries:
            record_id, dot, record_kind = entry.name.rpartition(".")
            if (not dot or not entry.is_file(follow_symlinks=False)
                    or not _KIND.fullmatch(record_kind) or not _RECORD_ID.fullmatch(record_id)
                    or (kind is not None and record_kind != kind)):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # deleted meanwhile by another thread
                continue
            found.append(RecordFile(record_kind, record_id, info.st_size, info.st_mtime))
        return found

    def _remove_partial_writes(self) -> None:
        # A temporary file is what a crash left before the rename: never reported as stored, so
        # nobody was told it was kept. It holds personal data (sealed), so it goes.
        for entry in os.scandir(self.directory):
            if entry.name.startswith(".") and entry.name.endswith(_TMP_SUFFIX):
                log.warning("removing a record left half-written by a crash: %s", entry.name)
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)


def _check_names(kind: str, record_id: str) -> None:
    if not _KIND.fullmatch(kind):
        raise ValueError("a record kind is a plain lower-case name")
    if not _RECORD_ID.fullmatch(record_id):
        raise ValueError("a record id is 1-128 characters of A-Z a-z 0-9 . _ : - ")


def _fsync_directory(directory: Path) -> None:
    """Make a rename or a new name in ``directory`` survive a power cut."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag  # noqa: PLC0415 - see Sealer._aead

    return InvalidTag
