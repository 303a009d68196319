"""`kiosk-fleet monitor`: takes every terminal's messages off the broker into the fleet store.

MQTT 5, persistent session. Heartbeats, events and acks come through shared subscriptions
(``$share/fleet/kiosk/v1/+/...``), so N monitors on one broker or a cluster split them, each
message to one of them. Statuses and OTA states are retained, and a broker sends no retained
message to a shared subscription (MQTT 5, 4.8.2), so every monitor subscribes to those directly:
they are one per connection, and storing one twice changes nothing.

Two threads: paho's network thread only queues what arrives (bounded; a terminal sending more
than its rate is refused there, counted), and the writer thread takes batches off the queue into
one transaction each, then acknowledges the QoS 1 messages of the batch: a monitor killed before
its commit leaves them unacknowledged, and the broker delivers them again. While the database is
away the writer keeps its batch and retries; the queue keeps filling up to its bound and the
broker holds the rest (it sends no more than its in-flight window of unacknowledged messages).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from contracts.mqtt import TOPIC_PREFIX, utc_now
from fleet.ingest import Refusal, Seen, read_message
from fleet.store import FleetStore
from fleet.sweeper import SWEEP_EVERY_S, sweep_if_holder

log = logging.getLogger(__name__)

REFUSAL_LOG_EVERY_S = 60.0


@dataclass(frozen=True)
class MonitorSettings:
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "kiosk-fleet-monitor"
    group: str = "fleet"  # the shared subscriptions' group: every instance of one fleet
    keepalive_s: int = 30
    # How long the broker keeps this monitor's session (its subscriptions and the QoS 1
    # messages for it) while it is away: a restart or an upgrade, not a decommissioning.
    session_expiry_s: int = 3600
    batch_size: int = 500
    batch_wait_s: float = 0.2  # the longest a message waits for its batch to fill
    queue_max: int = 50_000  # messages held between the network thread and the writer
    # Per terminal: a terminal sends a heartbeat every 30 s and a few events; this many
    # messages a second (and a burst this big) is far above that, far below a flood.
    rate_per_s: float = 5.0
    burst: int = 50
    retry_s: float = 1.0  # between attempts to write a batch while the database is away
    sweep_every_s: float = SWEEP_EVERY_S  # the alert rules, by whichever instance holds the lease
    keep_days: float = 30.0  # events, activity and acks kept this long (the lease holder prunes)
    prune_every_s: float = 3600.0
    reconnect_max_s: int = 30


@dataclass
class _Arrival:
    topic: str
    payload: bytes
    retained: bool
    qos: int
    mid: int
    received: dt.datetime


class _Inbox:
    """The bounded queue between the network thread and the writer.

    The writer takes a whole batch under one lock, and is woken only when its first message is
    in or the batch is full (a ``queue.Queue`` took a lock round per message, and woke the writer
    for every message while its batch filled: a thread switch each). ``idle`` is set by a take
    that finds the queue empty (the writer calls it only once its last batch is stored) and
    cleared by every put, both under the lock: while it is set, everything put is stored.
    """

    def __init__(self, bound: int) -> None:
        self._items: deque[_Arrival] = deque()
        self._bound = bound
        self._ready = threading.Condition(threading.Lock())
        self._wanted = 0  # messages the waiting writer waits for; 0: it does not wait
        self.idle = True

    def put(self, arrival: _Arrival) -> bool:
        """Queue ``arrival``; False when the queue is full."""
        with self._ready:
            if len(self._items) >= self._bound:
                return False
            self._items.append(arrival)
            self.idle = False
            if self._wanted and len(self._items) >= self._wanted:
                self._wanted = 0
                self._ready.notify()
            return True

    def take(self, most: int, first_wait_s: float, fill_wait_s: float) -> list[_Arrival]:
        """Up to ``most`` messages, oldest first: waits up to ``first_wait_s`` for one, then up
        to ``fill_wait_s`` for the batch to fill; nothing (and idle) when none came."""
        with self._ready:
            if not self._items:
                self.idle = True  # the writer holds no batch: everything taken is stored
                self._wanted = 1
                self._ready.wait(first_wait_s)
                self._wanted = 0
                if not self._items:
                    return []
            if len(self._items) < most and fill_wait_s > 0:
                self._wanted = most
                self._ready.wait(fill_wait_s)
                self._wanted = 0
            items = self._items
            return [items.popleft() for _ in range(min(most, len(items)))]

    def empty(self) -> bool:
        return not self._items


class _RateLimit:
    """A token bucket per terminal (network thread only); idle full buckets are forgotten."""

    FORGET_ABOVE = 200_000  # terminals tracked before idle ones are dropped

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self._rate, self._burst = rate_per_s, float(burst)
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, tid: str, now: float) -> bool:
        tokens, last = self._buckets.get(tid, (self._burst, now))
        tokens = min(self._burst, tokens + (now - last) * self._rate)
        if tokens < 1.0:
            self._buckets[tid] = (tokens, now)
            return False
        self._buckets[tid] = (tokens - 1.0, now)
        if len(self._buckets) > self.FORGET_ABOVE:
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        full_after = self._burst / self._rate
        self._buckets = {tid: (tokens, last) for tid, (tokens, last) in self._buckets.items()
                         if now - last < full_after}


@dataclass
class MonitorCounts:
    """What the monitor took and refused, for ``/metrics`` and the logs (thread-safe)."""

    messages: Counter[str] = field(default_factory=Counter)  # by topic kind
    rejected: Counter[str] = field(default_factory=Counter)  # by reason
    stored_batches: int = 0
    write_failures: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, *, kind: str | None = None, rejected: str | None = None) -> None:
        with self._lock:
            if kind is not None:
                self.messages[kind] += 1
            if rejected is not None:
                self.rejected[rejected] += 1

    def snapshot(self) -> tuple[dict[str, int], dict[str, int]]:
        with self._lock:
            return dict(self.messages), dict(self.rejected)


_KINDS = frozenset({"status", "heartbeat", "event", "ota", "ack"})


class Monitor:
    """One monitor instance; ``start`` returns at once, ``stop`` drains what it can."""

    def __init__(self, settings: MonitorSettings, store: FleetStore, *,
                 clock: Callable[[], dt.datetime] = utc_now) -> None:
        self._settings = settings
        self._store = store
        self._clock = clock
        self.counts = MonitorCounts()
        self._inbox = _Inbox(settings.queue_max)
        self._limit = _RateLimit(settings.rate_per_s, settings.burst)
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._refusal_logged: dict[str, float] = {}
        self._next_prune = time.monotonic()  # the lease holder prunes at once, then hourly
        self._writer = threading.Thread(target=self._write_loop, name="fleet-writer", daemon=True)
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        s = self._settings
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=s.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,  # a QoS 1 message is acknowledged once it is in the store
        )
        client.reconnect_delay_set(min_delay=1, max_delay=s.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        s = self._settings
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = s.session_expiry_s
        self._writer.start()
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False,
                                   properties=properties)
        self._client.loop_start()

    def wait_connected(self, timeout_s: float) -> bool:
        """Whether the monitor is connected and subscribed within ``timeout_s``."""
        return self._connected.wait(timeout_s)

    def wait_idle(self, timeout_s: float) -> bool:
        """Whether everything received so far is stored within ``timeout_s`` (tests, shutdown)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._inbox.idle:
                return True
            time.sleep(0.01)
        return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop taking messages, store what is queued (within ``timeout_s``), disconnect."""
        self._client.disconnect()
        self._client.loop_stop()
        self.wait_idle(timeout_s)
        self._stopping.set()
        self._writer.join(timeout_s)

    # --- network thread --------------------------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: object, flags: paho.ConnectFlags,
                    reason: ReasonCode, _properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("broker refused the monitor: %s", reason)
            return
        log.info("connected to the broker (session %s)",
                 "resumed" if flags.session_present else "new")
        s, prefix = self._settings, TOPIC_PREFIX
        shared = f"$share/{s.group}/{prefix}"
        client.subscribe([
            (f"{prefix}/+/status", SubscribeOptions(qos=1)),  # retained: never shared
            (f"{prefix}/+/ota", SubscribeOptions(qos=1)),
            (f"{shared}/+/heartbeat", SubscribeOptions(qos=0)),
            (f"{shared}/+/event", SubscribeOptions(qos=1)),
            (f"{shared}/+/cmd/+/ack", SubscribeOptions(qos=1)),
        ])

    def _on_subscribe(self, _client: paho.Client, _userdata: object, _mid: int,
                      reasons: list[ReasonCode], _properties: Properties | None) -> None:
        refused = [str(r) for r in reasons if r.is_failure]
        if refused:
            log.error("broker refused subscriptions: %s", ", ".join(refused))
            return
        self._connected.set()

    def _on_disconnect(self, _client: paho.Client, _userdata: object,
                       _flags: paho.DisconnectFlags, reason: ReasonCode,
                       _properties: Properties | None) -> None:
        self._connected.clear()
        if not self._stopping.is_set() and reason.is_failure:
            log.warning("lost the broker (%s); reconnecting", reason)

    def _on_message(self, client: paho.Client, _userdata: object,
                    message: paho.MQTTMessage) -> None:
        topic = message.topic  # decoded from bytes at each read: once here
        parts = topic.split("/")
        self.counts.add(kind=parts[-1] if parts[-1] in _KINDS else "other")
        tid = parts[2] if len(parts) > 2 else ""
        if not self._limit.allow(tid, time.monotonic()):
            self.counts.add(rejected="rate_limited")
            self._ack(client, message.mid, message.qos)  # dropped on purpose: not again
            return
        arrival = _Arrival(topic, bytes(message.payload), bool(message.retain),
                           message.qos, message.mid, self._clock())
        if not self._inbox.put(arrival):
            # Left unacknowledged: the broker keeps a QoS 1 message for this session and sends it
            # again; a QoS 0 heartbeat is lost, and counted.
            self.counts.add(rejected="queue_full")

    @staticmethod
    def _ack(client: paho.Client, mid: int, qos: int) -> None:
        if qos > 0:
            client.ack(mid, qos)

    # --- writer thread ---------------------------------------------------------------------------

    def _write_loop(self) -> None:
        # The sweep runs here, between batches: one thread owns the store's connection.
        next_sweep = time.monotonic()
        while not self._stopping.is_set():
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self._settings.sweep_every_s
                self._sweep()
            s = self._settings
            batch = self._inbox.take(s.batch_size, 0.2, s.batch_wait_s)
            if not batch:
                continue
            records: list[Seen] = []
            for arrival in batch:
                read = read_message(arrival.topic, arrival.payload, arrival.received,
                                    retained=arrival.retained)
                if isinstance(read, Refusal):
                    self.counts.add(rejected=str(read.reason))
                    self._log_refusal(read)
                else:
                    records.append(read)
            self._store_until_done(records)
            for arrival in batch:
                self._ack(self._client, arrival.mid, arrival.qos)

    def _sweep(self) -> None:
        now = self._clock()
        try:
            holder = sweep_if_holder(self._store, self._settings.client_id, now) is not None
            if holder and time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + self._settings.prune_every_s
                gone = self._store.prune(now - dt.timedelta(days=self._settings.keep_days))
                if gone:
                    log.info("pruned %d rows older than %g days", gone,
                             self._settings.keep_days)
        except Exception as e:  # the database away: the next sweep tries again
            log.error("alert sweep failed (%s: %s)", type(e).__name__, e)

    def _log_refusal(self, refusal: Refusal) -> None:
        # One line per reason a minute: a broken or hostile sender must not flood the log (the
        # counters have every one). The message names the topic's kind and the rule, no values.
        now = time.monotonic()
        last = self._refusal_logged.get(refusal.reason)
        if last is None or now - last >= REFUSAL_LOG_EVERY_S:
            self._refusal_logged[refusal.reason] = now
            log.warning("%s (terminal %s)", refusal.message, refusal.tid or "unknown")

    def _store_until_done(self, records: list[Seen]) -> None:
        failing_since: float | None = None
        while True:
            try:
                self._store.apply(records)
            except Exception as e:  # the database away, full, locked past its timeout
                self.counts.write_failures += 1
                if failing_since is None:
                    failing_since = time.monotonic()
                    log.error("cannot write to the fleet store (%s: %s); holding %d messages and"
                              " retrying", type(e).__name__, e, len(records))
                if self._stopping.is_set():
                    return
                time.sleep(self._settings.retry_s)
                continue
            if failing_since is not None:
                log.info("the fleet store is writable again after %.0f s",
                         time.monotonic() - failing_since)
            self.counts.stored_batches += 1
            return
