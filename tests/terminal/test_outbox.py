"""The durable SQLite outbox events and hub submissions go through; no broker needed."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from terminal.outbox import Outbox


@pytest.mark.parametrize("synchronous", ["NORMAL", "FULL"])
def test_outbox_keeps_order_and_never_reuses_a_seq(tmp_path: Path, synchronous: str) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3", synchronous=synchronous)  # type: ignore[arg-type]
    first = outbox.put("event", '{"a": 1}')
    outbox.put("hub_submission", "sealed")
    second = outbox.put_numbered("event", lambda seq: json.dumps({"seq": seq}))
    assert first is not None and second is not None
    assert [i.id for i in outbox.pending("event")] == [first.id, second.id]
    assert second.seq == 2 and json.loads(second.payload_json) == {"seq": 2}
    assert (outbox.count(), outbox.count("event"), outbox.count("hub_submission")) == (3, 2, 1)
    outbox.mark_done(second.id)
    outbox.mark_done(second.id)  # twice is harmless
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.sqlite3")
    assert [i.payload_json for i in reopened.pending("event")] == ['{"a": 1}']
    third = reopened.put_numbered("event", str)
    assert third is not None and third.seq == 3  # the deleted 2 is not handed out again
    reopened.close()


def test_outbox_is_safe_across_threads(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "outbox.sqlite3")

    def put_many() -> None:
        for _ in range(50):
            outbox.put("event", "{}")

    threads = [threading.Thread(target=put_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    items = outbox.pending("event", limit=1000)
    assert [i.seq for i in items] == list(range(1, 201))
    assert len({i.id for i in items}) == 200
    outbox.close()


def test_an_unreadable_outbox_is_set_aside_not_fatal(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    path.write_bytes(b"this is not a database" * 100)
    outbox = Outbox(path)
    assert outbox.count() == 0
    item = outbox.put("event", "{}")
    assert item is not None and (item.id, item.seq) == (1, 1)
    assert len(list(tmp_path.glob("outbox.sqlite3.damaged-*"))) == 1  # kept for a technician
    outbox.close()
