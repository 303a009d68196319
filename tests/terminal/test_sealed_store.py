"""Sealed records: the key file (made once, 0600, never replaced, refused when others can read it),
records bound to their kind and id, every altered byte caught, and durable writes that leave
nothing behind when the disk refuses them."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from terminal.sealed_store import (
    HEADER_BYTES,
    KEY_BYTES,
    KEY_FILE,
    AuthenticationFailed,
    KeyFileRefused,
    RecordDamaged,
    RecordUnreadable,
    SealedStore,
    Sealer,
    StorageRefused,
    WrongKey,
    load_or_create_key,
)

SECRET = "110101199003074514 13812345678 张三".encode()


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the key file ------------------------------------------------------------------------------


def test_the_key_is_made_once_with_mode_0600_and_read_back_after(tmp_path: Path) -> None:
    path = tmp_path / "data" / KEY_FILE
    key = load_or_create_key(path)
    assert len(key) == KEY_BYTES
    assert path.read_bytes() == key
    assert mode_of(path) == 0o600
    assert path.stat().st_uid == os.geteuid()
    assert load_or_create_key(path) == key  # the next start uses it, never a new one
    assert sorted(p.name for p in path.parent.iterdir()) == [KEY_FILE]  # no temporary left


def test_the_key_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        load_or_create_key(tmp_path / KEY_FILE)
    finally:
        os.umask(old)
    assert mode_of(tmp_path / KEY_FILE) == 0o600


def test_a_temporary_key_left_by_a_crash_is_not_used(tmp_path: Path) -> None:
    # Killed after writing the temporary file, before linking it: that key never sealed anything.
    (tmp_path / f".{KEY_FILE}.tmp").write_bytes(b"\1" * KEY_BYTES)
    key = load_or_create_key(tmp_path / KEY_FILE)
    assert key != b"\1" * KEY_BYTES
    assert sorted(p.name for p in tmp_path.iterdir()) == [KEY_FILE]


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o602])
def test_a_key_file_others_could_read_or_write_is_refused_with_a_clear_message(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / KEY_FILE
    key = load_or_create_key(path)
    path.chmod(mode)
    with pytest.raises(KeyFileRefused) as refused:
        Sealer.from_key_file(path)
    message = str(refused.value)
    assert str(path) in message
    assert f"{mode:04o}" in message
    assert "0600" in message
    assert key.hex() not in message
    assert path.read_bytes() == key  # refused, not replaced: the records it sealed stay readable


def test_a_symlink_a_directory_or_a_short_key_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "elsewhere.key"
    load_or_create_key(real)
    link = tmp_path / "link.key"
    link.symlink_to(real)
    with pytest.raises(OSError):  # O_NOFOLLOW: a link could point at anyone's file
        load_or_create_key(link)
    (tmp_path / "dir.key").mkdir(mode=0o700)
    with pytest.raises(KeyFileRefused, match="not a regular file"):
        load_or_create_key(tmp_path / "dir.key")
    short = tmp_path / "short.key"
    short.write_bytes(b"\0" * 16)
    short.chmod(0o600)
    with pytest.raises(KeyFileRefused, match="32-byte"):
        load_or_create_key(short)


def test_a_key_file_of_another_user_is_refused(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file to another user needs root")
    path = tmp_path / KEY_FILE
    load_or_create_key(path)
    os.chown(path, 65534, 65534)
    with pytest.raises(KeyFileRefused, match="uid 65534"):
        load_or_create_key(path)


# --- sealing -----------------------------------------------------------------------------------


@pytest.fixture
def sealer(tmp_path: Path) -> Sealer:
    return Sealer.from_key_file(tmp_path / KEY_FILE)


def test_a_record_opens_with_its_kind_and_id_and_hides_its_content(sealer: Sealer) -> None:
    sealed = sealer.seal("case", "L-T-1-20261207-0001", SECRET)
    assert SECRET not in sealed
    assert sealer.unseal("case", "L-T-1-20261207-0001", sealed) == SECRET
    # A fresh nonce each time: the same content never seals to the same bytes.
    assert sealer.seal("case", "L-T-1-20261207-0001", SECRET) != sealed


@pytest.mark.parametrize(("kind", "record_id"), [
    ("case", "L-T-1-20261207-0002"),  # another case's name
    ("report", "L-T-1-20261207-0001"),  # the same id as another kind
    ("case", "L-T-1-20261207-00010"),  # a prefix trick
])
def test_a_record_moved_into_another_place_fails_authentication(
    sealer: Sealer, kind: str, record_id: str
) -> None:
    sealed = sealer.seal("case", "L-T-1-20261207-0001", SECRET)
    with pytest.raises(AuthenticationFailed):
        sealer.unseal(kind, record_id, sealed)


@settings(max_examples=200)
@given(data=st.data())
def test_any_flipped_byte_is_caught(data: st.DataObject) -> None:
    sealer = Sealer(b"\7" * KEY_BYTES)
    sealed = bytearray(sealer.seal("case", "L-T-1-20261207-0001", SECRET))
    position = data.draw(st.integers(min_value=0, max_value=len(sealed) - 1))
    bit = data.draw(st.integers(min_value=0, max_value=7))
    sealed[position] ^= 1 << bit
    with pytest.raises(RecordUnreadable) as caught:
        sealer.unseal("case", "L-T-1-20261207-0001", bytes(sealed))
    # Which error says where the byte was: the format mark, the key id, or the rest.
    expected = (RecordDamaged if position < 4 else WrongKey if position < 12
                else AuthenticationFailed)
    assert type(caught.value) is expected
    assert SECRET.decode() not in str(caught.value)


@given(cut=st.integers(min_value=0, max_value=200))
def test_a_record_cut_short_is_caught(cut: int) -> None:
    sealer = Sealer(b"\7" * KEY_BYTES)
    sealed = sealer.seal("case", "L-T-1-20261207-0001", SECRET)
    short = sealed[:min(cut, len(sealed) - 1)]
    with pytest.raises(RecordDamaged if len(short) < HEADER_BYTES + 16 else AuthenticationFailed):
        sealer.unseal("case", "L-T-1-20261207-0001", short)


def test_another_key_is_named_as_such(tmp_path: Path, sealer: Sealer) -> None:
    sealed = sealer.seal("case", "L-T-1-20261207-0001", SECRET)
    other = Sealer.from_key_file(tmp_path / "other" / KEY_FILE)
    with pytest.raises(WrongKey) as caught:
        other.unseal("case", "L-T-1-20261207-0001", sealed)
    assert sealer.key_id.hex() in str(caught.value)
    assert other.key_id.hex() in str(caught.value)


# --- the store ---------------------------------------------------------------------------------


def test_a_stored_record_is_0600_in_a_0700_directory_and_opens_again(
    tmp_path: Path, sealer: Sealer
) -> None:
    store = SealedStore(tmp_path / "records", sealer)
    size = store.put("case", "L-T-1-20261207-0001", SECRET)
    path = store.path_of("case", "L-T-1-20261207-0001")
    assert path.stat().st_size == size
    assert mode_of(path) == 0o600
    assert mode_of(store.directory) == 0o700
    assert SECRET not in path.read_bytes()
    assert store.get("case", "L-T-1-20261207-0001") == SECRET
    [record] = store.records()
    assert (record.kind, record.record_id, record.size) == ("case", "L-T-1-20261207-0001", size)
    assert store.records("report") == []
    store.delete("case", "L-T-1-20261207-0001")
    store.delete("case", "L-T-1-20261207-0001")  # twice is harmless
    assert store.records() == []
    assert list(store.directory.iterdir()) == []


def test_a_half_written_temporary_file_is_removed_at_open_and_never_listed(
    tmp_path: Path, sealer: Sealer
) -> None:
    store = SealedStore(tmp_path / "records", sealer)
    store.put("case", "L-T-1-20261207-0001", SECRET)
    partial = store.directory / ".L-T-1-20261207-0002.case.tmp"
    partial.write_bytes(sealer.seal("case", "L-T-1-20261207-0002", SECRET)[:50])
    assert [r.record_id for r in store.records()] == ["L-T-1-20261207-0001"]
    SealedStore(tmp_path / "records", sealer)  # the next start
    assert not partial.exists()
    assert [r.record_id for r in store.records()] == ["L-T-1-20261207-0001"]


def test_a_record_cut_short_on_disk_is_reported_and_kept(tmp_path: Path, sealer: Sealer) -> None:
    store = SealedStore(tmp_path / "records", sealer)
    store.put("case", "L-T-1-20261207-0001", SECRET * 100)
    path = store.path_of("case", "L-T-1-20261207-0001")
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(AuthenticationFailed):
        store.get("case", "L-T-1-20261207-0001")
    assert path.exists()  # kept for a technician
    moved = store.set_aside("case", "L-T-1-20261207-0001", "unreadable")
    assert moved == store.directory / "unreadable" / "L-T-1-20261207-0001.case"
    assert store.records() == []
    assert [r.record_id for r in store.records(shelf="unreadable")] == ["L-T-1-20261207-0001"]
    assert mode_of(moved.parent) == 0o700


def test_too_little_free_space_refuses_the_record_and_leaves_nothing(
    tmp_path: Path, sealer: Sealer
) -> None:
    free = {"bytes": 10_000}
    store = SealedStore(tmp_path / "records", sealer, reserve_bytes=1000,
                        free=lambda _path: free["bytes"])
    store.put("case", "L-T-1-20261207-0001", b"x" * 8000)  # 8044 + 1000 reserve fit in 10,000
    with pytest.raises(StorageRefused) as refused:
        store.put("case", "L-T-1-20261207-0002", b"x" * 9000)
    assert refused.value.reason == "disk_full"
    assert [p.name for p in store.directory.iterdir()] == ["L-T-1-20261207-0001.case"]


def test_names_that_could_escape_the_directory_are_refused(
    tmp_path: Path, sealer: Sealer
) -> None:
    store = SealedStore(tmp_path / "records", sealer)
    for kind, record_id in [("case", "../x"), ("case", ".hidden"), ("../case", "x"),
                            ("case", "a/b"), ("Case", "x"), ("case", "")]:
        with pytest.raises(ValueError):
            store.put(kind, record_id, SECRET)
    with pytest.raises(ValueError):
        store.set_aside("case", "x", "../up")
