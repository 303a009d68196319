"""paho-mqtt 2.x behind a small interface: background connect and reconnect, a Will per connect.

Nothing here blocks the caller on the network: ``start()`` only schedules the connection
(``connect_async`` + ``loop_start``), paho's network thread connects, reconnects with exponential
backoff (capped at 6 to 8 s, so the terminal is back within about 10 s of the broker; each
terminal's own steps, see ``spread_backoff``) and keeps QoS 1 messages until they are
acknowledged. Hooks run on that network thread and must return quickly; an
exception in a hook is logged, never allowed to kill the thread (paho re-raises callback errors by
default, which would silently end all reconnecting).

Incoming messages are acknowledged by the receiver (paho's manual acknowledgement), so a QoS 1
message the terminal has not yet made safe is redelivered by the broker rather than lost.
An outage is logged once at WARNING, then summarised every few minutes, and the reconnection at
INFO; paho's own per-attempt error lines are not passed on.
"""

from __future__ import annotations

import contextlib
import logging
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

# Bounded so a long outage cannot eat the memory of a small board: QoS 1 messages beyond this are
# refused (their Delivery fails at once) instead of queued. Events are safe in the outbox anyway.
MAX_QUEUED_MESSAGES = 1000
OUTAGE_SUMMARY_EVERY_S = 300.0


def spread_backoff(min_s: float, max_s: float, rng: random.Random) -> tuple[float, float]:
    """This terminal's reconnect delays: the first between ``min_s`` and twice that, the cap
    between three quarters of ``max_s`` and ``max_s``.

    paho doubles the delay from the first up to the cap, the same steps on every terminal: after a
    broker restart a whole fleet would knock at the same instants, once a second and then every
    8 s, each time all at once. Steps of its own per terminal spread those knocks over the
    interval, and the cap never grows, so a terminal is still back within ``max_s`` and a connect.
    """
    first = min_s * (1.0 + rng.random())
    cap = max_s * (0.75 + 0.25 * rng.random())
    return min(first, cap), cap


@dataclass(frozen=True)
class BrokerSettings:
    """Where and how to reach the broker. TLS is on when ``tls`` is set or any TLS file is given."""

    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = None
    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    keepalive_s: int = 30
    connect_timeout_s: float = 5.0
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 8.0  # back within ~10 s of the broker's return, whatever the outage
    # How long the broker keeps our session (subscriptions, queued QoS 1 commands) while we are
    # away: as long as a command may live (DESIGN 6: expires_at at most 7 days ahead).
    session_expiry_s: int = 7 * 24 * 3600

    @property
    def uses_tls(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None


@dataclass(frozen=True)
class LastWill:
    """The message the broker publishes for us if our connection dies without a DISCONNECT."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True)
class InboundMessage:
    """A message from the broker; hand it back to ``MqttLink.acknowledge`` once it is safe."""

    topic: str
    payload: bytes
    qos: int
    mid: int
    connection: int  # the link's connection it arrived on; a PUBACK belongs to that one only


class OutageLog:
    """Says once that the broker is unreachable, then every few minutes that it still is, and
    at INFO when the link is back: a long outage no longer fills the journal line by line."""

    def __init__(self, where: str, *, every_s: float = OUTAGE_SUMMARY_EVERY_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._where = where
        self._every_s = every_s
        self._clock = clock
        self._since: float | None = None
        self._failures = 0
        self._next_summary = 0.0

    def failed(self, why: str, retry_max_s: float) -> None:
        now = self._clock()
        self._failures += 1
        if self._since is None:
            self._since = now
            self._next_summary = now + self._every_s
            log.warning("MQTT broker %s unreachable (%s); retrying in the background every "
                        "%g s at most; events wait in the outbox", self._where, why,
                        retry_max_s)
        elif now >= self._next_summary:
            self._next_summary = now + self._every_s
            log.warning("MQTT broker %s still unreachable after %.0f min (%d failed attempts; "
                        "last: %s)", self._where, (now - self._since) / 60, self._failures, why)

    def connected(self) -> None:
        if self._since is None:
            log.info("MQTT connected to %s", self._where)
        else:
            log.info("MQTT connected to %s after %.0f s offline (%d failed attempts)",
                     self._where, self._clock() - self._since, self._failures)
        self._since = None
        self._failures = 0


class Delivery:
    """One publish: ``done`` once the broker acknowledged it (QoS 1) or it was written (QoS 0).

    ``error`` is set when it was never handed to paho (not connected for QoS 0, queue full); such a
    delivery will never be done.
    """

    def __init__(self, mid: int, qos: int, connection: int, error: str | None = None) -> None:
        self.mid = mid
        self.qos = qos
        self.connection = connection  # the link's connection number when it was published
        self.error = error
        self._event = threading.Event()

    @property
    def done(self) -> bool:
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` for the acknowledgement; True if it came."""
        if self.error is not None:
            return False
        return self._event.wait(timeout_s)

    def _set_done(self) -> None:
        self._event.set()


class MqttLink:
    """A client id, a broker, and hooks; owns one paho client and its network thread.

    ``will`` is asked for the Will right before every CONNECT packet (paho's socket-open point),
    so each connection carries a Will built for that connection; it is called only when the TCP
    (and TLS) connection is up, so it runs exactly once per CONNECT the broker receives.
    """

    def __init__(
        self,
        client_id: str,
        settings: BrokerSettings,
        *,
        will: Callable[[], LastWill | None] | None = None,
        on_connect: Callable[[], None] | None = None,
        on_published: Callable[[], None] | None = None,
        on_message: Callable[[InboundMessage], None] | None = None,
    ) -> None:
        self._settings = settings
        self._will = will
        self._on_connect = on_connect
        self._on_published = on_published
        self._on_message = on_message
        self._lock = threading.Lock()
        self._connected = False
        self._connection = 0
        self._started = False
        self._subscriptions: dict[str, int] = {}
        # mid -> Delivery awaiting on_publish; "early" holds mids acknowledged before publish()
        # returned (the network thread can be that quick), matched up when the caller registers.
        self._pending: dict[int, Delivery] = {}
        self._early: set[int] = set()
        self._outage = OutageLog(f"{settings.host}:{settings.port}")
        self._client = self._make_client(client_id)

    def _make_client(self, client_id: str) -> paho.Client:
        s = self._settings
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            # MQTT 5: a command carries a message expiry interval, so the broker, not our clock
            # (a Pi has no RTC), drops one that expired while we were away; reason codes say why
            # a connection was refused or lost. The persistent session is asked for at connect.
            protocol=MQTTProtocolVersion.MQTTv5,
            # Our receiver acknowledges: a command is PUBACKed only once it is made safe.
            manual_ack=True,
        )
        # paho's logger is left off: it writes an ERROR line for every reconnect attempt while
        # the broker is down. The outage log below says what matters, and every hook is guarded.
        client.connect_timeout = s.connect_timeout_s
        # paho annotates these as int but computes in float seconds; tests use fractions.
        first_s, cap_s = spread_backoff(s.reconnect_min_s, s.reconnect_max_s, random.Random())
        client.reconnect_delay_set(
            min_delay=first_s,  # type: ignore[arg-type]
            max_delay=cap_s,  # type: ignore[arg-type]
        )
        client.max_queued_messages_set(MAX_QUEUED_MESSAGES)
        if s.username is not None:
            client.username_pw_set(s.username, s.password)
        if s.uses_tls:
            client.tls_set(
                ca_certs=str(s.ca_file) if s.ca_file else None,
                certfile=str(s.cert_file) if s.cert_file else None,
                keyfile=str(s.key_file) if s.key_file else None,
            )
        client.on_socket_open = self._handle_socket_open
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_publish = self._handle_publish
        client.on_message = self._handle_message
        return client

    # --- life cycle ------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting in the background; returns at once, whether or not a broker is up."""
        with self._lock:
            if self._started:
                return
            self._started = True
        s = self._settings
        # A persistent session: the broker keeps our subscription and queues the QoS 1 commands
        # sent while we are offline (a broker outage, a reboot, a cut line) for session_expiry_s,
        # and hands them over when we return; their expiry then decides which still run.
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = s.session_expiry_s
        # connect_async does no I/O (not even DNS); the network thread connects and retries,
        # every time with these settings.
        self._client.connect_async(s.host, s.port, keepalive=s.keepalive_s, clean_start=False,
                                   properties=properties)
        self._client.loop_start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Disconnect cleanly (the broker drops our Will) and end the network thread.

        Waits at most ``timeout_s``: the thread may be inside a connection attempt to a dead
        broker (bounded by ``connect_timeout_s``); it is a daemon and ends on its own.
        """
        with self._lock:
            if not self._started:
                return
            self._started = False
        self._client.disconnect()
        stopper = threading.Thread(target=self._client.loop_stop, name="mqtt-stop", daemon=True)
        stopper.start()
        stopper.join(timeout_s)
        if stopper.is_alive():
            log.warning("MQTT network thread did not end within %.1f s", timeout_s)
        with self._lock:
            self._connected = False
            self._pending.clear()
            self._early.clear()

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def connection(self) -> int:
        """How many times this link has connected; names the current connection."""
        return self._connection

    # --- publishing and subscribing --------------------------------------------------------------

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Delivery:
        """Hand a message to paho; never blocks on the network.

        QoS 0 while disconnected is dropped (its Delivery carries an error). QoS 1 is queued by
        paho and sent, or re-sent, once connected, until the broker acknowledges it.
        """
        connection = self._connection
        if qos == 0 and not self._connected:
            return Delivery(0, qos, connection, error="not connected")
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return Delivery(info.mid, qos, connection, error="outgoing queue full")
        if qos == 0 and info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return Delivery(info.mid, qos, connection, error=paho.error_string(info.rc))
        # QoS 1 with NO_CONN is fine: paho keeps it and sends it after the next CONNACK.
        delivery = Delivery(info.mid, qos, connection)
        with self._lock:
            if info.mid in self._early:
                self._early.discard(info.mid)
                delivery._set_done()
            else:
                self._pending[info.mid] = delivery
        return delivery

    def acknowledge(self, message: InboundMessage) -> None:
        """PUBACK ``message`` to the broker: it is safe now. Does nothing when the connection it
        came on is gone; the broker then redelivers it on the next one."""
        if message.qos == 0:
            return
        with self._lock:
            current = self._connected and message.connection == self._connection
        if current:
            self._client.ack(message.mid, message.qos)

    def subscribe(self, topic_filter: str, qos: int = 1) -> None:
        """Subscribe now if connected, and again after every reconnect (a broker that lost our
        session, say restarted without persistence, would otherwise leave us deaf)."""
        with self._lock:
            self._subscriptions[topic_filter] = qos
        if self._connected:
            self._client.subscribe(topic_filter, qos)

    # --- paho callbacks (network thread) ---------------------------------------------------------

    def _handle_socket_open(self, client: paho.Client, userdata: Any, sock: Any) -> None:
        # Called after the TCP/TLS connection is up and right before paho sends CONNECT, which
        # reads the Will from the client: the one place a per-connection Will can be set.
        # paho leaves Nagle on: a command's ack and its PUBACK, two small packets back to back,
        # then wait out the broker's delayed ACK (40-90 ms measured) instead of leaving at once.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self._will is None:
            return
        try:
            will = self._will()
        except Exception:
            log.exception("building the MQTT Will failed; connecting without one")
            will = None
        if will is None:
            client.will_clear()
        else:
            client.will_set(will.topic, will.payload, qos=will.qos, retain=will.retain)

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            # Refused (bad credentials, not authorised): paho retries with backoff.
            self._outage.failed(f"refused: {reason.getName()}", self._settings.reconnect_max_s)
            return
        with self._lock:
            self._connected = True
            self._connection += 1
            subscriptions = dict(self._subscriptions)
        self._outage.connected()
        for topic_filter, qos in subscriptions.items():
            client.subscribe(topic_filter, qos)
        self._call("on_connect", self._on_connect)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        with self._lock:
            was_connected = self._connected
            self._connected = False
            # QoS 0 messages still queued were dropped by paho and will never be acknowledged.
            for mid in [m for m, d in self._pending.items() if d.qos == 0]:
                del self._pending[mid]
        if was_connected and self._started:  # not our own stop()
            self._outage.failed(f"connection lost: {reason.getName()}",
                                self._settings.reconnect_max_s)

    def _handle_connect_fail(self, client: paho.Client, userdata: Any) -> None:
        # No TCP (or TLS) connection at all: refused, unreachable, timed out.
        self._outage.failed("no connection", self._settings.reconnect_max_s)

    def _handle_publish(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reason: ReasonCode,
        properties: Any,
    ) -> None:
        if reason.is_failure:
            # MQTT 5 says what 3.1.1 could not: the broker took the message but will not pass it
            # on (an ACL that denies the topic). Retrying cannot change that; say it, once each.
            log.warning("broker refused a published message: %s", reason.getName())
        with self._lock:
            delivery = self._pending.pop(mid, None)
            if delivery is None:
                self._early.add(mid)
        if delivery is not None:
            delivery._set_done()
            self._call("on_published", self._on_published)

    def _handle_message(
        self, client: paho.Client, userdata: Any, message: paho.MQTTMessage
    ) -> None:
        inbound = InboundMessage(message.topic, bytes(message.payload), message.qos,
                                 message.mid, self._connection)
        if self._on_message is None:
            self.acknowledge(inbound)
            return
        try:
            self._on_message(inbound)
        except Exception:
            # The receiver failed before it could make the message safe: acknowledge it anyway,
            # or the broker would keep one of its few in-flight slots for us until we reconnect.
            log.exception("handling an MQTT message failed")
            self.acknowledge(inbound)

    @staticmethod
    def _call(name: str, hook: Callable[[], None] | None) -> None:
        if hook is None:
            return
        try:
            hook()
        except Exception:
            log.exception("MQTT %s hook failed", name)
