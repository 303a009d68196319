"""`kiosk-fleet`: the fleet side's command line: ``monitor`` (messages into the store), ``cmd``
(a command to a terminal, a site or every terminal, with its acks as they arrive), ``serve`` (the
dashboard, the JSON API and /metrics), and ``user add`` / ``token add`` (who may use them)."""

from __future__ import annotations

import argparse
import gc
import getpass
import json
import logging
import signal
import sqlite3
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from contracts.mqtt import AckPayload, utc_now
from fleet.accounts import (
    AccountError,
    Role,
    check_account_name,
    hash_password,
    new_token,
    token_digest,
)
from fleet.availability import OpeningHours
from fleet.commands import DEFAULT_TTL_S, CommandError, CommandSender, build_commands
from fleet.db import is_postgres, redacted
from fleet.monitor import Monitor, MonitorSettings
from fleet.store import FleetStore, StoreError

log = logging.getLogger("fleet")

SUMMARY_EVERY_S = 60.0
RETIRE_TIMEOUT_S = 120.0  # how long --retire waits for the broker and the store before giving up


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
    monitor.add_argument("--client-id", default="kiosk-fleet-monitor",
                         help="this instance's MQTT client id: unique per instance")
    monitor.add_argument("--group", default="fleet",
                         help="shared-subscription group of all instances of one fleet")
    monitor.add_argument("--retire", action="store_true",
                         help="retire the (stopped) instance with this client id for good: store "
                              "what the broker still holds for it, end its session, exit")
    cmd = commands.add_parser("cmd", help="send a command and show its acks as they arrive")
    cmd.add_argument("target", metavar="TID",
                     help="a terminal id, or with --site / --all the word 'site' / 'all'")
    cmd.add_argument("name", help="the command: ping, set_heartbeat_interval, help_ack, ...")
    cmd.add_argument("--args", type=_json_object, default={}, help="the arguments, a JSON object")
    cmd.add_argument("--ttl", type=float, default=DEFAULT_TTL_S,
                     help=f"seconds until it expires (default {DEFAULT_TTL_S:.0f}, at most 7 days)")
    cmd.add_argument("--site", help="every terminal of this site the store knows")
    cmd.add_argument("--all", action="store_true", help="every terminal the store knows")
    cmd.add_argument("--wait", type=float, default=30.0,
                     help="seconds to wait for the final acks (default 30; 0: do not wait)")
    serve = commands.add_parser("serve", help="the operations dashboard, JSON API and /metrics")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: put TLS in front)")
    serve.add_argument("--port", type=int, default=8703, help="port (default 8703)")
    serve.add_argument("--secure-cookies", action="store_true",
                       help="session cookies over HTTPS only (behind a TLS proxy)")
    serve.add_argument("--private-metrics", action="store_true",
                       help="/metrics wants an API token too (default: open, like most exporters)")
    serve.add_argument("--tz", help="time zone the pages show times in, such as Asia/Shanghai "
                                    "(default: this machine's)")
    serve.add_argument("--opening-hours", type=_opening_hours, default=OpeningHours(),
                       metavar="HH:MM-HH:MM",
                       help="the service centres' opening hours in that zone, what availability "
                            "is counted over (default 00:00-24:00: a 24-hour self-service area)")
    user = commands.add_parser("user", help="dashboard accounts")
    user_add = user.add_subparsers(dest="action", required=True).add_parser(
        "add", help="add an account (password from a prompt or --password-file)")
    user_add.add_argument("name")
    user_add.add_argument("--password-file", type=Path,
                          help="read the password from the first line of this file")
    token = commands.add_parser("token", help="API tokens for scripts")
    token_add = token.add_subparsers(dest="action", required=True).add_parser(
        "add", help="make a token and print it, once")
    token_add.add_argument("name")
    for sub in (user_add, token_add):
        sub.add_argument("--role", required=True, choices=[str(r) for r in Role],
                         help="viewer: reads; operator: also acknowledges and sends commands")
    for sub in (monitor, cmd, serve):
        sub.add_argument("--broker", type=_broker, default=("127.0.0.1", 1883),
                         help="host:port of the MQTT 5 broker (default 127.0.0.1:1883)")
    for sub in (monitor, cmd, serve, user_add, token_add):
        sub.add_argument("--db", type=_store_target, default=Path("fleet.db"),
                         help="the store: a SQLite file (default ./fleet.db), or a PostgreSQL"
                              " database as postgresql://user@host/db, which several monitor"
                              " instances share")
    return parser


def _store_target(text: str) -> Path | str:
    """A ``postgresql://`` URL as it is (a Path would fold its ``//``), anything else a file."""
    return text if is_postgres(text) else Path(text)


def _opening_hours(text: str) -> OpeningHours:
    try:
        return OpeningHours.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(f"not JSON: {e.msg}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("the arguments must be a JSON object")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "cmd":
        return _send(args)
    if args.command == "serve":
        return _serve(args)
    if args.command == "user":
        return _add_user(args)
    if args.command == "token":
        return _add_token(args)
    return _monitor(args)


def _targets(args: argparse.Namespace, store: FleetStore) -> list[str]:
    if args.site is None and not args.all:
        return [args.target]
    known = store.terminals(utc_now())
    return [t.tid for t in known if args.all or t.site == args.site]


def _send(args: argparse.Namespace) -> int:
    """``kiosk-fleet cmd``: exit 0 when every terminal's final ack is succeeded."""
    try:
        store = FleetStore(args.db)
    except (StoreError, OSError) as e:
        print(f"cannot open the fleet store {redacted(args.db)}: {e}", file=sys.stderr)
        return 2
    try:
        tids = _targets(args, store)
        if not tids:
            print("no terminal to send to (the store knows none there)", file=sys.stderr)
            return 2
        commands = build_commands(tids, args.name, args.args, ttl_s=args.ttl)
        host, port = args.broker

        def show(tid: str, request_id: str, ack: AckPayload) -> None:
            detail = f": {ack.error}" if ack.error else ""
            result = f" {json.dumps(ack.result, ensure_ascii=False)}" if ack.result else ""
            print(f"{tid} {request_id} {ack.status}{detail}{result}", flush=True)

        with CommandSender(host, port, on_ack=show) as sender:
            for command in commands:
                store.record_command(command.request_id, command.tid, command.payload)
            sender.send(commands)
            for command in commands:
                print(f"{command.tid} {command.request_id} sent, expires "
                      f"{command.payload.expires_at:%Y-%m-%d %H:%M:%S}Z", flush=True)
            if args.wait <= 0:
                return 0
            done = sender.log.wait_final([c.request_id for c in commands], args.wait)
        finals = {c.request_id: [a for a in sender.log.acks.get(c.request_id, []) if a.final]
                  for c in commands}
        if not done:
            waiting = [c.tid for c in commands if not finals[c.request_id]]
            print(f"no final ack within {args.wait:.0f} s from: {', '.join(waiting)} (offline "
                  "terminals run it when they return, unless it expires first)", file=sys.stderr)
            return 1
        return 0 if all(a[-1].status == "succeeded" for a in finals.values()) else 1
    except CommandError as e:
        print(str(e), file=sys.stderr)
        return 2
    finally:
        store.close()


def _monitor(args: argparse.Namespace) -> int:
    try:
        store = FleetStore(args.db)
    except (StoreError, OSError) as e:
        log.error("cannot open the fleet store %s: %s", redacted(args.db), e)
        return 2
    host, port = args.broker
    monitor = Monitor(MonitorSettings(host=host, port=port, client_id=args.client_id,
                                      group=args.group, retire=args.retire), store)
    if args.retire:
        return _retire(monitor, store, args.client_id)
    done = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        log.info("stopping on %s", signal.Signals(signum).name)
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # What start-up made (modules, classes, pydantic's validators: most of the heap) lives as
    # long as the process: out of the collector's sight, each full collection no longer walks it
    # (they cost ingest a fifth of its time). Cycles made from here on are collected as before.
    gc.collect()
    gc.freeze()
    monitor.start()
    log.info("monitor %s: broker %s:%d, store %s", args.client_id, host, port,
             redacted(args.db))
    while not done.wait(SUMMARY_EVERY_S):
        messages, rejected = monitor.counts.snapshot()
        log.info("so far: messages %s; refused %s", messages or "none", rejected or "none")
    monitor.stop()
    store.close()
    return 0


def _retire(monitor: Monitor, store: FleetStore, client_id: str) -> int:
    """``kiosk-fleet monitor --retire``: drain and end one instance's session, then exit."""
    monitor.start()
    try:
        if not monitor.wait_retired(RETIRE_TIMEOUT_S):
            print(f"{client_id}: not retired within {RETIRE_TIMEOUT_S:.0f} s (broker away, the "
                  "store away, or the instance still running and taking its session back); its "
                  "session is kept with what was not stored: stop the instance and try again",
                  file=sys.stderr)
            return 1
        messages, _rejected = monitor.counts.snapshot()
        print(f"{client_id}: retired; {sum(messages.values())} message(s) that waited for it "
              "stored, its session ended", flush=True)
        return 0
    finally:
        monitor.stop()
        store.close()


def _serve(args: argparse.Namespace) -> int:
    """``kiosk-fleet serve``: the dashboard until SIGTERM / Ctrl-C."""
    import zoneinfo  # noqa: PLC0415

    # Only here: a monitor host needs none of the web stack (the `fleet` extra).
    import uvicorn  # noqa: PLC0415

    from fleet.web.app import WebSettings, create_app  # noqa: PLC0415
    from fleet.web.dispatch import Broker  # noqa: PLC0415

    try:
        tz = None if args.tz is None else zoneinfo.ZoneInfo(args.tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        print(f"unknown time zone {args.tz!r}", file=sys.stderr)
        return 2
    try:
        store = FleetStore(args.db)
    except (StoreError, OSError, sqlite3.Error) as e:
        log.error("cannot open the fleet store %s: %s", redacted(args.db), e)
        return 2
    host, port = args.broker
    app = create_app(store, WebSettings(broker=Broker(host, port),
                                        secure_cookies=args.secure_cookies,
                                        private_metrics=args.private_metrics, display_tz=tz,
                                        opening_hours=args.opening_hours))
    log.info("dashboard on http://%s:%d, store %s, broker %s:%d", args.host, args.port,
             redacted(args.db), host, port)
    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                    timeout_keep_alive=5, timeout_graceful_shutdown=5, limit_concurrency=200)
    finally:
        store.close()
    return 0


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file is not None:
        lines = args.password_file.read_text(encoding="utf-8").splitlines()
        return lines[0] if lines else ""
    if not sys.stdin.isatty():
        raise AccountError("no terminal to ask for the password on: use --password-file")
    first = getpass.getpass(f"password for {args.name}: ")
    if getpass.getpass("again: ") != first:
        raise AccountError("the two passwords differ")
    return first


def _add_user(args: argparse.Namespace) -> int:
    """``kiosk-fleet user add NAME --role ROLE``: 0 when added, 2 when not (and why)."""
    try:
        name = check_account_name(args.name)
        hashed = hash_password(_read_password(args))
        store = FleetStore(args.db)
    except (AccountError, OSError, StoreError, sqlite3.Error) as e:
        print(f"not added: {e}", file=sys.stderr)
        return 2
    try:
        if not store.add_user(name, Role(args.role), hashed, utc_now()):
            print(f"not added: there is a user {name} already", file=sys.stderr)
            return 2
    finally:
        store.close()
    print(f"user {name} added ({args.role})")
    return 0


def _add_token(args: argparse.Namespace) -> int:
    """``kiosk-fleet token add NAME --role ROLE``: prints the token (stdout, once)."""
    try:
        name = check_account_name(args.name)
        store = FleetStore(args.db)
    except (AccountError, OSError, StoreError, sqlite3.Error) as e:
        print(f"no token made: {e}", file=sys.stderr)
        return 2
    token = new_token()
    try:
        if not store.add_token(name, Role(args.role), token_digest(token), utc_now()):
            print(f"no token made: there is a token {name} already", file=sys.stderr)
            return 2
    finally:
        store.close()
    print(token)
    print(f"token {name} ({args.role}): shown this once, only its SHA-256 is kept",
          file=sys.stderr)
    return 0
