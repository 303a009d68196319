"""The outbox under storage faults: a real full filesystem, damaged files and a lost WAL.

Promises checked here (docs/OPERATIONS.md states them for operators): a full disk is waited out
with the database kept, and new items are held in order until it takes writes again; a damaged
file is set aside and the terminal goes on with a fresh one; a seq is never handed out twice,
whatever was lost; nothing that was committed is lost except what the storage itself destroyed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from mqtt_support import Received, Recorder

from contracts.mqtt import (
    EventPayload,
    HeartbeatPayload,
    event_topic,
    heartbeat_topic,
    parse_payload,
)
from devices.base import Health
from simulator.broker import Mosquitto
from terminal.outbox import REPLACED, Outbox

CHILD = Path(__file__).with_name("full_disk_child.py")
TID_FULL = "T-FULL-1"
PAGE = 4096


def needs_mount_namespace() -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("a private tmpfs needs root and unshare (CI runs as root)")


def run_child(tmp_path: Path, scenario: str) -> dict[str, object]:
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private",
         sys.executable, str(CHILD), str(mountpoint), scenario],
        check=False, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def filled(path: Path, events: int, *, synchronous: str = "FULL") -> list[int]:
    outbox = Outbox(path, synchronous=synchronous)  # type: ignore[arg-type]
    seqs = []
    for n in range(events):
        item = outbox.put_numbered("event", lambda seq, n=n: json.dumps({"seq": seq, "n": n}))
        assert item is not None
        seqs.append(item.seq)
    outbox.put("hub_rating", '{"case_number": "C1"}')
    outbox.close()
    return seqs


# --- a real full filesystem ----------------------------------------------------------------------


def test_a_full_disk_at_start_keeps_the_database_and_resumes_when_space_returns(
    tmp_path: Path,
) -> None:
    needs_mount_namespace()
    found = run_child(tmp_path, "full_at_start")
    # Opening on the full disk is not corruption: nothing is renamed, the terminal starts.
    assert found["health_full"] == "disk_full"
    assert "outbox.sqlite" in found["files_while_full"]  # type: ignore[operator]
    assert not any("damaged" in name for name in found["files_while_full"])  # type: ignore[union-attr]
    assert found["held"] == [True] * 5  # held in memory, in order, not refused
    # Space returns: the 20 stored before and the 5 held are all there, numbered in order.
    assert found["health_after"] == "ok"
    assert found["ns"] == [*range(20), *range(100, 105)]
    assert found["seqs"] == list(range(1, 26))
    assert not any("damaged" in name for name in found["files_after"])  # type: ignore[union-attr]


def test_a_disk_that_fills_at_run_time_loses_nothing(tmp_path: Path) -> None:
    needs_mount_namespace()
    found = run_child(tmp_path, "full_at_run_time")
    # No "cannot rollback - no transaction is active" hiding the real error, nothing raised.
    assert found["raised"] is None
    assert found["held"] == [True] * 5
    assert found["health_full"] == "disk_full"
    # The three confirmed while full are no longer handed out, though not yet deleted.
    assert found["pending_while_full"] == list(range(4, 11))
    assert found["health_after"] == "ok"
    assert found["ns"] == [*range(3, 10), *range(100, 105)]
    assert found["seqs"] == list(range(4, 16))
    assert found["after_restart"] == list(range(4, 16))  # the late deletes reached the disk


# --- damaged files -------------------------------------------------------------------------------


def zero_page(path: Path, page: int) -> None:
    with open(path, "r+b") as f:
        f.seek(PAGE * (page - 1))
        f.write(b"\0" * PAGE)


def test_a_zeroed_page_is_found_at_start_set_aside_and_the_outbox_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    seqs = filled(path, 300)
    zero_page(path, 2)  # passes SELECT count(*), but every write fails afterwards
    outbox = Outbox(path)
    assert outbox.health().health is Health.DEGRADED
    assert outbox.health().reason == REPLACED
    aside = list(tmp_path.glob("outbox.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].stat().st_size > 0  # kept for a technician
    item = outbox.put_numbered("event", str)
    assert item is not None and item.seq > max(seqs)  # never a seq handed out before
    assert item in outbox.pending("event", limit=1000)
    outbox.mark_done(item.id)
    assert item not in outbox.pending("event", limit=1000)
    outbox.close()
    reopened = Outbox(path)  # the fresh file is sound: no second replacement
    assert reopened.health().health is Health.OK
    reopened.close()


def test_garbage_after_the_last_page_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    seqs = filled(path, 50)
    with open(path, "ab") as f:
        f.write(os.urandom(3 * PAGE + 123))
    outbox = Outbox(path)
    assert [i.seq for i in outbox.pending("event")] == seqs
    item = outbox.put_numbered("event", str)
    assert item is not None and item.seq == max(seqs) + 1
    outbox.close()


def test_a_file_that_is_not_a_database_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    path.write_bytes(b"this is not a database" * 400)
    outbox = Outbox(path)
    assert outbox.health().reason == REPLACED
    assert outbox.put("event", "{}") is not None
    outbox.close()


# --- a lost or truncated WAL: seqs are never reused ----------------------------------------------


def power_cut_copy(path: Path, into: Path) -> Path:
    """The files as a power cut would leave them: copied while the outbox is still open."""
    into.mkdir()
    for name in (path.name, path.name + "-wal", path.name + "-shm", path.name + ".seq"):
        if (path.parent / name).exists():
            shutil.copy(path.parent / name, into / name)
    return into / path.name


@pytest.mark.parametrize("wal_left", [None, 0.5, 0.0])
def test_after_a_lost_wal_no_seq_is_handed_out_twice(tmp_path: Path,
                                                      wal_left: float | None) -> None:
    path = tmp_path / "live" / "outbox.sqlite"
    path.parent.mkdir()
    filled(path, 10)  # checkpointed into the database at close
    outbox = Outbox(path)
    published = [outbox.put_numbered("event", str) for _ in range(30)]  # in the WAL only
    assert all(item is not None for item in published)
    copy = power_cut_copy(path, tmp_path / "after-power-cut")
    outbox.close()
    wal = copy.with_name(copy.name + "-wal")
    if wal_left is None:
        wal.unlink()
    else:
        wal.write_bytes(wal.read_bytes()[: int(wal.stat().st_size * wal_left)])
    survivor = Outbox(copy)
    item = survivor.put_numbered("event", str)
    # The fleet may have seen seqs up to 40 already: the next one is past them all.
    assert item is not None and item.seq > 40
    assert [i.seq for i in survivor.pending("event", limit=100)][:10] == list(range(1, 11))
    survivor.close()


def test_a_clean_restart_leaves_no_gap(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    filled(path, 10)
    outbox = Outbox(path)
    item = outbox.put_numbered("event", str)
    assert item is not None and item.seq == 11
    outbox.close()


def test_an_unreadable_seq_file_jumps_ahead_instead_of_reusing(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    filled(path, 10)
    path.with_name(path.name + ".seq").write_text("{not json")
    outbox = Outbox(path)
    item = outbox.put_numbered("event", str)
    assert item is not None and item.seq > 1_000_000_000  # continued from the clock
    outbox.close()


# --- the terminal around it: the fault in the heartbeat, the event once it can write ------------


@pytest.mark.mosquitto
def test_a_full_disk_shows_in_the_heartbeat_and_as_an_event_once_space_returns(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    needs_mount_namespace()
    recorder = Recorder(mosquitto.port, client_id="fleet-full-disk")
    mountpoint = tmp_path / "mnt"
    mountpoint.mkdir()
    child = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", sys.executable, str(CHILD),
         str(mountpoint), "terminal", str(mosquitto.port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        assert json.loads(child.stdout.readline()) == {"step": "full"}

        def storage_is(health: str, reason: str) -> Callable[[Received], bool]:
            def match(m: Received) -> bool:
                if m.topic != heartbeat_topic(TID_FULL):
                    return False
                storage = parse_payload(HeartbeatPayload, m.payload).devices.get("storage")
                return storage is not None and (storage.state, storage.reason) == (health, reason)
            return match

        # The terminal started on a full disk, serves, and says so in its heartbeat.
        index, _ = recorder.wait_for(storage_is("fault", "disk_full"), timeout=15)
        child.stdin.write("\n")
        child.stdin.flush()
        assert json.loads(child.stdout.readline()) == {"step": "freed"}
        # The fault event was held while nothing could be written, and arrives now.
        recorder.wait_for(
            lambda m: m.topic == event_topic(TID_FULL)
            and parse_payload(EventPayload, m.payload).fields
            == {"device": "storage", "reason": "disk_full"},
            timeout=15,
        )
        recorder.wait_for(storage_is("ok", ""), after=index, timeout=15)
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.wait(15) == 0, child.stderr.read() if child.stderr else ""
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        recorder.close()
