"""`kiosk-sim fleet`: many lightweight virtual terminals in one process, speaking contract v1.

    kiosk-sim fleet --terminals 1000 --broker mqtt://127.0.0.1:1883 [--interval 30]
                    [--faults paper_out=2,abrupt=0.5] [--duration 600]

Each virtual terminal is a paho MQTT 5 client with the real terminal's manners (DESIGN 6): a Will
with its ``bdseq`` set before each connect, a retained birth right after it, a heartbeat every
``interval_s`` with ``seq`` growing by one, events at QoS 1 with a ``seq`` never reused, and an
answer to every command (accepted then succeeded, or rejected with the reason). All of them share
one asyncio loop through paho's external-loop socket callbacks: one thread for the lot, not one
per terminal, so ten thousand fit on a small machine. Heartbeats are spread over the interval, as
terminals switched on at different times send them.

Faults come on a schedule: ``--faults NAME=RATE,...`` gives each terminal that many occurrences an
hour on average (a Poisson process): ``paper_near_end``, ``paper_out`` (the printer's state in the
heartbeats, with a ``device_fault`` event; paper comes back a few minutes later), ``errand_failed``,
``help`` (a ``help_requested`` event), ``abrupt`` (the connection cut without DISCONNECT, so the
broker sends the Will; back with a new connection a little later), ``silent`` (power lost: the
terminal stops sending and reading without closing its connection, so the broker sends the Will
only once its keepalive check gives up on it; back with a new connection a little later) and
``restart`` (a clean goodbye, then a new boot). What was sent is counted, so a test can hold the
fleet side to it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import heapq
import logging
import random
import resource
import signal
import socket
import sys
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion

from contracts.mqtt import (
    AckPayload,
    CommandPayload,
    Counters,
    DeviceReport,
    EventPayload,
    HeartbeatPayload,
    PayloadError,
    Severity,
    StatusPayload,
    SystemFigures,
    ack_topic,
    command_filter,
    encode,
    event_topic,
    heartbeat_topic,
    parse_payload,
    status_topic,
    utc_now,
)

log = logging.getLogger("kiosk-sim.fleet")

FAULTS = ("paper_near_end", "paper_out", "errand_failed", "help", "abrupt", "silent", "restart")
KEEPALIVE_S = 30
TICK_S = 0.05  # how often due heartbeats and faults are looked for


@dataclass
class LoadOptions:
    terminals: int = 10
    host: str = "127.0.0.1"
    port: int = 1883
    interval_s: float = 30.0
    prefix: str = "VT"
    sites: int = 10
    faults: dict[str, float] = field(default_factory=dict)  # per terminal per hour
    seed: int | None = None
    connects_per_s: float = 500.0  # how fast the fleet comes up (a broker has its limits too)
    paper_back_s: tuple[float, float] = (60.0, 300.0)  # a roll is reloaded after this long
    offline_for_s: tuple[float, float] = (5.0, 60.0)  # a cut cable or a restart lasts this long
    keepalive_s: int = KEEPALIVE_S  # the MQTT keepalive (a silent terminal's Will waits on it)
    protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv5


@dataclass
class Sent:
    """What the fleet sent: heartbeats written to the socket, events acknowledged by the broker
    (what a test holds the fleet side to)."""

    heartbeats: Counter[str] = field(default_factory=Counter)  # by terminal id
    events: Counter[str] = field(default_factory=Counter)
    births: int = 0
    wills_armed: int = 0  # abrupt cuts and silences: the broker sends these terminals' Wills
    silences: int = 0
    acks: int = 0
    commands: int = 0

    @property
    def heartbeat_total(self) -> int:
        return sum(self.heartbeats.values())

    @property
    def event_total(self) -> int:
        return sum(self.events.values())


class _Sockets:
    """paho's external loop on asyncio: each client's socket read and written by the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def attach(self, client: paho.Client) -> None:
        client.on_socket_open = self._open
        client.on_socket_close = self._close
        client.on_socket_register_write = self._want_write
        client.on_socket_unregister_write = self._written

    def _open(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._loop.add_reader(sock, client.loop_read)

    def _close(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)

    def _want_write(self, client: paho.Client, _userdata: Any, sock: Any) -> None:
        self._loop.add_writer(sock, client.loop_write)

    def _written(self, _client: paho.Client, _userdata: Any, sock: Any) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_writer(sock)

    def forget(self, sock: Any) -> None:
        """Read and write ``sock`` no more (a terminal that lost power)."""
        with contextlib.suppress(ValueError, OSError):
            self._loop.remove_reader(sock)
            self._loop.remove_writer(sock)


class VirtualTerminal:
    """One terminal of the fleet: its identity, sequence numbers, devices and MQTT client."""

    def __init__(self, tid: str, site: str, options: LoadOptions, sent: Sent,
                 rng: random.Random) -> None:
        self.tid, self.site = tid, site
        self._options, self._sent, self._rng = options, sent, rng
        self.interval_s = options.interval_s
        self.bdseq = 0
        self.boot_id = uuid.uuid4().hex
        self.started_at = utc_now()
        self.hb_seq = 0
        self.ev_seq = 0
        self.sessions = 0
        self.printer = DeviceReport(state="ok")
        self.online = False
        self.silent = False  # power lost: its socket is left open, nothing read or written
        self.next_heartbeat = 0.0  # set at each connection (monotonic clock)
        self.back_at: float | None = None  # when an offline terminal returns
        self.paper_back_at: float | None = None
        self._answered: dict[str, list[AckPayload]] = {}
        self._sending: dict[int, str] = {}  # mid -> "heartbeat" / "event", until it is out
        self.client = self._make_client()

    def _make_client(self) -> paho.Client:
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                             client_id=self.tid, protocol=self._options.protocol)
        client.on_connect = self._connected
        client.on_message = self._command
        client.on_publish = self._published
        return client

    # --- connection --------------------------------------------------------------------------

    def connect(self) -> None:
        """Arm the Will for the next connection, connect (TCP and CONNECT; the birth follows the
        broker's CONNACK)."""
        self.bdseq += 1
        self.client.will_set(status_topic(self.tid), encode(self._status(online=False)), qos=1,
                             retain=True)
        self.client.connect(self._options.host, self._options.port,
                            keepalive=self._options.keepalive_s)

    def _connected(self, client: paho.Client, _userdata: Any, _flags: Any, reason: Any,
                   _properties: Any) -> None:
        if reason.is_failure:
            log.warning("%s refused by the broker: %s", self.tid, reason)
            return
        client.subscribe(command_filter(self.tid), qos=1)
        client.publish(status_topic(self.tid), encode(self._status(online=True)), qos=1,
                       retain=True)
        self._sent.births += 1
        self.online = True
        self.heartbeat()  # a birth is followed at once by a heartbeat, as on a real terminal

    def cut(self) -> None:
        """The cable pulled: the socket closed without DISCONNECT, so the broker sends the Will."""
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.client.loop_read()  # paho notices the closed socket and lets it go
        self.online = False
        # Heartbeats still in paho's buffer went with the connection; events are sent again.
        self._sending = {mid: kind for mid, kind in self._sending.items() if kind == "event"}
        self._sent.wills_armed += 1

    def fall_silent(self, sockets: _Sockets) -> None:
        """Power lost: nothing more is sent or read, and the connection is not closed (no FIN),
        so the broker notices only when the keepalive lapses, then sends the Will."""
        sock = self.client.socket()
        if sock is not None:
            sockets.forget(sock)
        self.online = False
        self.silent = True
        self._sending = {mid: kind for mid, kind in self._sending.items() if kind == "event"}
        self._sent.wills_armed += 1
        self._sent.silences += 1

    def power_back(self) -> None:
        """Before the next connection (whose connect closes the old socket: the broker has
        given up on it by then, or gives up now)."""
        self.silent = False

    def goodbye(self) -> None:
        """A clean stop: offline said by the terminal itself, then DISCONNECT."""
        self.client.publish(status_topic(self.tid), encode(self._status(online=False)), qos=1,
                            retain=True)
        self.client.disconnect()
        self.online = False

    @property
    def sending(self) -> bool:
        """Messages published and not yet out (a heartbeat unwritten, an event not PUBACKed)."""
        return bool(self._sending)

    def new_boot(self) -> None:
        self.boot_id = uuid.uuid4().hex
        self.started_at = utc_now()
        self.hb_seq = 0  # a heartbeat's seq is per boot; an event's never repeats
        self.sessions = 0

    # --- messages ----------------------------------------------------------------------------

    def _status(self, *, online: bool) -> StatusPayload:
        return StatusPayload(online=online, bdseq=self.bdseq, boot_id=self.boot_id,
                             version="1.0.0-sim", site=self.site, started_at=self.started_at)

    def heartbeat(self) -> None:
        self.hb_seq += 1
        self.sessions += self._rng.random() < 0.2
        payload = HeartbeatPayload(
            seq=self.hb_seq, interval_s=self.interval_s,
            uptime_s=(utc_now() - self.started_at).total_seconds(),
            state="idle" if self.printer.state != "fault" else "degraded", version="1.0.0-sim",
            devices={"printer": self.printer, "card_reader": DeviceReport(state="ok")},
            system=SystemFigures(cpu_pct=round(self._rng.uniform(2, 30), 1),
                                 mem_pct=round(self._rng.uniform(30, 60), 1),
                                 disk_free_mb=self._rng.randint(2000, 9000),
                                 temp_c=round(self._rng.uniform(40, 60), 1)),
            outbox=0,
            counters=Counters(sessions=self.sessions, completed_errands=self.sessions // 2,
                              receipts=self.sessions // 2, ratings={}))
        info = self.client.publish(heartbeat_topic(self.tid), encode(payload), qos=0)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._sending[info.mid] = "heartbeat"

    def event(self, kind: str, severity: Severity, **fields: Any) -> None:
        self.ev_seq += 1
        payload = EventPayload(seq=self.ev_seq, type=kind, severity=severity, **fields)
        # QoS 1: paho keeps it until the broker's PUBACK, as the terminal's outbox does.
        info = self.client.publish(event_topic(self.tid), encode(payload), qos=1)
        self._sending[info.mid] = "event"

    def _published(self, _client: paho.Client, _userdata: Any, mid: int, _reason: Any,
                   _properties: Any) -> None:
        # Counted once out: a QoS 0 heartbeat when written to the socket (one still in paho's
        # buffer when the cable is cut is lost, as on a real terminal), a QoS 1 event at the
        # broker's PUBACK (one in flight then is sent again after the reconnection).
        kind = self._sending.pop(mid, None)
        if kind == "heartbeat":
            self._sent.heartbeats[self.tid] += 1
        elif kind == "event":
            self._sent.events[self.tid] += 1

    def set_printer(self, state: str, reason: str = "") -> None:
        self.printer = DeviceReport(state=state, reason=reason)  # type: ignore[arg-type]
        if state != "ok":
            self.event("device_fault", "critical" if state == "fault" else "warning",
                       device="printer", reason=reason)
        self.heartbeat()  # a change is reported at once

    def _command(self, client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        request_id = message.topic.rsplit("/", 1)[-1]
        self._sent.commands += 1
        if request_id in self._answered:  # a repeat: the same answer, never run twice
            for ack in self._answered[request_id]:
                self._ack(client, request_id, ack)
            return
        try:
            command = parse_payload(CommandPayload, bytes(message.payload))
        except PayloadError as e:
            acks = [AckPayload(status="rejected", error=e.message[:200])]
        else:
            acks = self._run(command)
        self._answered[request_id] = acks
        for ack in acks:
            self._ack(client, request_id, ack)

    def _run(self, command: CommandPayload) -> list[AckPayload]:
        if command.expired():
            return [AckPayload(status="rejected", error="expired")]
        accepted = AckPayload(status="accepted")
        if command.name == "ping":
            return [accepted, AckPayload(status="succeeded", result={"pong": True})]
        if command.name == "set_heartbeat_interval":
            interval = command.args.get("interval_s")
            if not isinstance(interval, (int, float)) or not 5 <= interval <= 3600:
                return [AckPayload(status="rejected", error="interval_s: 5 to 3600 seconds")]
            self.interval_s = float(interval)
            return [accepted, AckPayload(status="succeeded", result={"interval_s": interval})]
        if command.name in ("help_ack", "test_print", "restart_app", "set_staff_badges"):
            return [accepted, AckPayload(status="succeeded")]
        return [AckPayload(status="rejected", error=f"unknown command {command.name}")]

    def _ack(self, client: paho.Client, request_id: str, ack: AckPayload) -> None:
        client.publish(ack_topic(self.tid, request_id), encode(ack), qos=1)
        self._sent.acks += 1


class FleetLoad:
    """The virtual fleet; ``run`` until ``stop`` is called or ``duration_s`` has passed.

    Work is kept on a heap of what is due when (a heartbeat, a terminal coming back, paper
    reloaded), and each fault's occurrences across the fleet are drawn as one Poisson process
    and given to a terminal at random: a tick costs what is due, not a look at every terminal.
    """

    def __init__(self, options: LoadOptions) -> None:
        self.options = options
        self.sent = Sent()
        self._rng = random.Random(options.seed)
        width = max(4, len(str(options.terminals)))
        self.terminals = [
            VirtualTerminal(f"{options.prefix}-{n:0{width}d}",
                            f"site-{n % max(1, options.sites):03d}", options, self.sent,
                            random.Random(self._rng.random()))
            for n in range(options.terminals)]
        self.up = asyncio.Event()
        self._stopping: asyncio.Event | None = None
        self._due: list[tuple[float, int, str, int, int]] = []  # (when, order, what, index, gen)
        self._order = 0
        self._generation = [0] * len(self.terminals)  # +1 per connection: old heartbeats lapse
        self._next_fault: dict[str, float] = {}
        self._sockets: _Sockets | None = None

    def stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()

    def _schedule(self, when: float, what: str, index: int) -> None:
        self._order += 1
        heapq.heappush(self._due, (when, self._order, what, index, self._generation[index]))

    async def run(self, duration_s: float | None = None) -> Sent:
        loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        sockets = self._sockets = _Sockets(loop)
        for terminal in self.terminals:
            sockets.attach(terminal.client)
        await self._connect_all()
        self.up.set()
        log.info("%d virtual terminals connected to %s:%d", len(self.terminals),
                 self.options.host, self.options.port)
        misc = asyncio.create_task(self._keepalives())
        start = time.monotonic()
        for fault, rate in self.options.faults.items():
            if rate > 0:
                self._next_fault[fault] = start + self._fault_gap(rate)
        deadline = None if duration_s is None else start + duration_s
        try:
            while not self._stopping.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                self._tick(now)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), TICK_S)
        finally:
            misc.cancel()
            await self._goodbye_all()
        return self.sent

    async def _connect_all(self) -> None:
        pause = 1.0 / self.options.connects_per_s
        for index in range(len(self.terminals)):
            self._connect(index, time.monotonic())
            await asyncio.sleep(pause)
        deadline = time.monotonic() + 30.0
        while (not all(t.online or t.back_at for t in self.terminals)
               and time.monotonic() < deadline):
            await asyncio.sleep(0.05)

    def _connect(self, index: int, now: float) -> None:
        terminal = self.terminals[index]
        self._generation[index] += 1
        terminal.back_at = None
        terminal.power_back()
        try:
            terminal.connect()
        except OSError as e:
            log.error("%s cannot connect: %s", terminal.tid, e)
            terminal.back_at = now + 5.0
            self._schedule(terminal.back_at, "back", index)
            return
        # The birth's own heartbeat goes at CONNACK; the next ones every interval after, at a
        # phase of their own, as terminals switched on at different times.
        terminal.next_heartbeat = now + self._rng.uniform(0, terminal.interval_s)
        self._schedule(terminal.next_heartbeat, "heartbeat", index)

    async def _keepalives(self) -> None:
        while True:
            for terminal in self.terminals:
                if not terminal.silent:
                    terminal.client.loop_misc()  # PINGREQ when due, retries of QoS 1 messages
            await asyncio.sleep(1.0)

    async def _goodbye_all(self) -> None:
        # Terminals still away come back first: an event in flight when a cable was cut may
        # have reached the broker without its PUBACK reaching us, and only the reconnection
        # sends it again and hears the PUBACK. Then what is still on its way (an event awaiting
        # its PUBACK would be stored by the fleet side but never counted here), then goodbyes.
        now = time.monotonic()
        for index, terminal in enumerate(self.terminals):
            if not terminal.online and terminal.back_at is not None:
                self._connect(index, now)
        deadline = time.monotonic() + 5.0
        while not all(t.online for t in self.terminals) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        while any(t.online and t.sending for t in self.terminals) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for terminal in self.terminals:
            if terminal.online:
                terminal.goodbye()
        await asyncio.sleep(0.5)  # let the goodbyes and DISCONNECTs leave

    def _tick(self, now: float) -> None:
        while self._due and self._due[0][0] <= now:
            _, _, what, index, generation = heapq.heappop(self._due)
            terminal = self.terminals[index]
            if what == "back":
                self._connect(index, now)
            elif generation != self._generation[index] or not terminal.online:
                continue  # from before the terminal went away
            elif what == "heartbeat":
                terminal.heartbeat()
                terminal.next_heartbeat += terminal.interval_s
                self._schedule(terminal.next_heartbeat, "heartbeat", index)
            elif what == "paper":
                terminal.paper_back_at = None
                terminal.set_printer("ok")
        for fault, rate in self.options.faults.items():
            while fault in self._next_fault and self._next_fault[fault] <= now:
                self._next_fault[fault] += self._fault_gap(rate)
                index = self._rng.randrange(len(self.terminals))
                if self.terminals[index].online:
                    self._inject(index, fault, now)

    def _fault_gap(self, rate_per_terminal_hour: float) -> float:
        """Seconds to the fleet's next occurrence of a fault (exponential: a Poisson process)."""
        return self._rng.expovariate(rate_per_terminal_hour * len(self.terminals) / 3600.0)

    def _inject(self, index: int, fault: str, now: float) -> None:
        terminal = self.terminals[index]
        if fault in ("paper_near_end", "paper_out") and terminal.paper_back_at is None:
            terminal.set_printer("degraded" if fault == "paper_near_end" else "fault", fault)
            terminal.paper_back_at = now + self._rng.uniform(*self.options.paper_back_s)
            self._schedule(terminal.paper_back_at, "paper", index)
        elif fault == "errand_failed":
            terminal.event("errand_failed", "warning", errand_id="ssc_enrollment_proof",
                           stage="hub", reason="hub_unavailable")
        elif fault == "help":
            # In groups of four: twelve hex digits can be all digits, which the contract rightly
            # refuses as looking like a phone or ID number.
            raw = uuid.uuid4().hex[:12]
            terminal.event("help_requested", "warning", help_id=f"{raw[:4]}-{raw[4:8]}-{raw[8:]}",
                           screen="home", elder_mode=self._rng.random() < 0.3)
        elif fault in ("abrupt", "silent", "restart"):
            if fault == "abrupt":
                terminal.cut()
            elif fault == "silent":
                assert self._sockets is not None  # set by run(), which injects faults
                terminal.fall_silent(self._sockets)
            else:
                terminal.goodbye()
                terminal.new_boot()
            terminal.back_at = now + self._rng.uniform(*self.options.offline_for_s)
            self._schedule(terminal.back_at, "back", index)


def parse_faults(text: str) -> dict[str, float]:
    """``NAME=RATE,...`` (occurrences per terminal per hour)."""
    faults: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, rate = part.partition("=")
        if name not in FAULTS:
            raise argparse.ArgumentTypeError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
        try:
            faults[name] = float(rate or "1")
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: not a rate: {rate!r}") from None
        if faults[name] < 0:
            raise argparse.ArgumentTypeError(f"{name}: a rate cannot be negative")
    return faults


def raise_open_file_limit(wanted: int) -> int:
    """Each connection is a file descriptor: lift the soft limit toward ``wanted`` (at most the
    hard limit); returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kiosk-sim fleet", description=__doc__.split("\n")[0])
    parser.add_argument("--terminals", type=int, default=10, help="how many (default 10)")
    parser.add_argument("--broker", default="mqtt://127.0.0.1:1883",
                        help="mqtt://HOST:PORT of the broker (default mqtt://127.0.0.1:1883)")
    parser.add_argument("--interval", type=float, default=30.0,
                        help="seconds between heartbeats (default 30)")
    parser.add_argument("--faults", type=parse_faults, default={},
                        help=f"NAME=RATE,... per terminal per hour; names: {', '.join(FAULTS)}")
    parser.add_argument("--prefix", default="VT", help="terminal ids are PREFIX-0001... (VT)")
    parser.add_argument("--sites", type=int, default=10, help="spread over this many sites")
    parser.add_argument("--duration", type=float, help="stop after this many seconds")
    parser.add_argument("--seed", type=int, help="for a repeatable run")
    parser.add_argument("--mqtt311", action="store_true",
                        help="speak MQTT 3.1.1, as older terminals do (default MQTT 5)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    address = args.broker.removeprefix("mqtt://")
    host, _, port = address.rpartition(":") if ":" in address else (address, "", "1883")
    if args.terminals < 1 or args.interval <= 0:
        print("kiosk-sim fleet: --terminals and --interval must be positive", file=sys.stderr)
        return 2
    limit = raise_open_file_limit(args.terminals + 256)
    if limit < args.terminals + 64:
        print(f"kiosk-sim fleet: {args.terminals} connections need more open files than the "
              f"limit of {limit} (ulimit -n)", file=sys.stderr)
        return 2
    load = FleetLoad(LoadOptions(
        terminals=args.terminals, host=host or "127.0.0.1", port=int(port),
        interval_s=args.interval, prefix=args.prefix, sites=args.sites, faults=args.faults,
        seed=args.seed,
        protocol=MQTTProtocolVersion.MQTTv311 if args.mqtt311 else MQTTProtocolVersion.MQTTv5))

    async def run() -> Sent:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, load.stop)
        return await load.run(args.duration)

    started = dt.datetime.now(dt.UTC)
    sent = asyncio.run(run())
    took = (dt.datetime.now(dt.UTC) - started).total_seconds()
    print(f"{len(load.terminals)} terminals for {took:.0f} s: {sent.heartbeat_total} heartbeats, "
          f"{sent.event_total} events, {sent.births} births, {sent.wills_armed} abrupt cuts "
          f"and silences, "
          f"{sent.commands} commands answered with {sent.acks} acks")
    return 0
