"""`kiosk-fleet`: the fleet side's command line (``monitor`` for now; ``serve`` and ``cmd`` come
with the dashboard)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from fleet.monitor import Monitor, MonitorSettings
from fleet.store import FleetStore, StoreError

log = logging.getLogger("fleet")

SUMMARY_EVERY_S = 60.0


def _broker(text: str) -> tuple[str, int]:
    """``host[:port]`` or ``mqtt://host[:port]``."""
    text = text.removeprefix("mqtt://")
    host, _, port = text.rpartition(":") if ":" in text else (text, "", "1883")
    try:
        number = int(port)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {port!r}") from None
    if not host or not 0 < number < 65536:
        raise argparse.ArgumentTypeError("expected host:port")
    return host, number


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-fleet", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    monitor = commands.add_parser("monitor", help="take the terminals' messages into the store")
    monitor.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883),
                         help="host:port of the MQTT 5 broker (default 127.0.0.1:1883)")
    monitor.add_argument("--db", type=Path, default=Path("fleet.db"),
                         help="the SQLite store, created if missing (default ./fleet.db)")
    monitor.add_argument("--client-id", default="kiosk-fleet-monitor",
                         help="this instance's MQTT client id: unique per instance")
    monitor.add_argument("--group", default="fleet",
                         help="shared-subscription group of all instances of one fleet")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store = FleetStore(args.db)
    except (StoreError, OSError) as e:
        log.error("cannot open the fleet store %s: %s", args.db, e)
        return 2
    host, port = args.broker
    monitor = Monitor(MonitorSettings(host=host, port=port, client_id=args.client_id,
                                      group=args.group), store)
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    monitor.start()
    log.info("monitor %s: broker %s:%d, store %s", args.client_id, host, port, args.db)
    while not done.wait(SUMMARY_EVERY_S):
        messages, rejected = monitor.counts.snapshot()
        log.info("so far: messages %s; refused %s", messages or "none", rejected or "none")
    monitor.stop()
    store.close()
    return 0
