"""Runs outbox scenarios on a real, tiny tmpfs that fills up; started by test_outbox_faults.py
inside a private mount namespace (``unshare -m``), so the mount never touches the machine.

Usage: full_disk_child.py MOUNTPOINT SCENARIO [BROKER_PORT]. Prints one JSON line of findings for
the parent test to assert on; steps that need the parent (the terminal scenario) are paced by
lines on stdin.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from terminal.outbox import Outbox

SIZE = "4m"


def mount_tmpfs(mountpoint: Path) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "tmpfs", str(mountpoint)],
                   check=True)


def fill(directory: Path) -> Path:
    """Write until the filesystem refuses: ENOSPC, as a real full SD card answers."""
    filler = directory / "filler"
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(b"\0" * 4096)
        except OSError:
            pass
    return filler


def payload(n: int) -> Callable[[int], str]:
    return lambda seq: json.dumps({"seq": seq, "n": n, "pad": "x" * 200})


def full_at_start(root: Path) -> dict[str, object]:
    path = root / "outbox.sqlite"
    outbox = Outbox(path, synchronous="FULL", retry_interval_s=0.0)
    for n in range(20):
        outbox.put_numbered("event", payload(n))
    outbox.close()  # a clean stop: the WAL and shared-memory files are gone
    filler = fill(root)
    started = time.monotonic()
    outbox = Outbox(path, synchronous="FULL", retry_interval_s=0.0)  # must not raise
    found: dict[str, object] = {
        "open_s": time.monotonic() - started,
        "health_full": str(outbox.health().reason),
        "files_while_full": sorted(p.name for p in root.iterdir()),
        "held": [outbox.put_numbered("event", payload(100 + n)) is None for n in range(5)],
        "count_while_full": outbox.count("event"),
    }
    filler.unlink()
    found["health_after"] = str(outbox.health().health)
    items = outbox.pending("event", limit=100)
    found["seqs"] = [i.seq for i in items]
    found["ns"] = [json.loads(i.payload_json)["n"] for i in items]
    outbox.close()
    found["files_after"] = sorted(p.name for p in root.iterdir())
    return found


def full_at_run_time(root: Path) -> dict[str, object]:
    path = root / "outbox.sqlite"
    outbox = Outbox(path, synchronous="FULL", retry_interval_s=0.0)
    for n in range(10):
        outbox.put_numbered("event", payload(n))
    delivered = outbox.pending("event", limit=3)
    filler = fill(root)
    found: dict[str, object] = {}
    try:
        held = [outbox.put_numbered("event", payload(100 + n)) for n in range(5)]
        found["raised"] = None
    except Exception as error:  # the test reports it: nothing may escape
        held = []
        found["raised"] = f"{type(error).__name__}: {error}"
    found["held"] = [item is None for item in held]
    found["health_full"] = str(outbox.health().reason)
    for item in delivered:  # confirmed while the disk is full: no longer handed out
        outbox.mark_done(item.id)
    found["pending_while_full"] = [i.seq for i in outbox.pending("event", limit=100)]
    filler.unlink()
    found["health_after"] = str(outbox.health().health)
    items = outbox.pending("event", limit=100)
    found["seqs"] = [i.seq for i in items]
    found["ns"] = [json.loads(i.payload_json)["n"] for i in items]
    outbox.close()
    reopened = Outbox(path)
    found["after_restart"] = [i.seq for i in reopened.pending("event", limit=100)]
    reopened.close()
    found["files_after"] = sorted(p.name for p in root.iterdir())
    return found


def terminal(root: Path, broker_port: int) -> dict[str, object]:
    """The terminal's own wiring of outbox, device monitor, operations link and telemetry, with
    its state directory on the full disk; the parent watches MQTT and paces us on stdin."""
    from devices.base import DeviceState  # noqa: PLC0415 - only this scenario needs them
    from terminal.config import parse_config  # noqa: PLC0415
    from terminal.counters import DailyCounters  # noqa: PLC0415
    from terminal.device_monitor import DeviceMonitor  # noqa: PLC0415
    from terminal.operations import OperationsLink  # noqa: PLC0415

    state = root / "state"
    state.mkdir()
    config = parse_config({
        "terminal": {"id": "T-FULL-1", "state_dir": str(state)},
        "mqtt": {"host": "127.0.0.1", "port": broker_port, "heartbeat_interval_s": 5},
    })
    outbox = Outbox(state / "outbox.sqlite", synchronous="FULL", retry_interval_s=0.2)
    outbox.close()
    filler = fill(root)
    outbox = Outbox(state / "outbox.sqlite", synchronous="FULL", retry_interval_s=0.2)
    counters = DailyCounters(dt.date.today)
    monitor: DeviceMonitor
    operations = OperationsLink(config, outbox=outbox, counters=counters,
                                devices=lambda: monitor.states(),  # noqa: PLW0108 - built below
                                in_session=lambda: False)
    monitor = DeviceMonitor({"card_reader": DeviceState.ok, "storage": outbox.health},
                            interval_s=0.5, on_change=operations.device_changed)
    outbox.on_health = lambda s: monitor.report("storage", s)
    monitor.start()
    operations.start(after=monitor.polled)
    print(json.dumps({"step": "full"}), flush=True)
    sys.stdin.readline()  # the parent saw the fault in a heartbeat
    filler.unlink()
    print(json.dumps({"step": "freed"}), flush=True)
    sys.stdin.readline()  # the parent saw the event and the recovery
    operations.stop()
    monitor.stop()
    outbox.close()
    return {"step": "done"}


def main() -> None:
    mountpoint, scenario = Path(sys.argv[1]), sys.argv[2]
    mount_tmpfs(mountpoint)
    root = mountpoint / "data"
    root.mkdir()
    os.chdir(mountpoint)
    if scenario == "full_at_start":
        found = full_at_start(root)
    elif scenario == "full_at_run_time":
        found = full_at_run_time(root)
    elif scenario == "terminal":
        found = terminal(root, int(sys.argv[3]))
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(found), flush=True)


if __name__ == "__main__":
    main()
