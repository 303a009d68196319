"""The card reader over PC/SC (pyscard's low-level scard API): watches every reader, reads cards.

Threads: ``watch()`` starts one daemon thread that waits on SCardGetStatusChange and calls the
callbacks from there. Each ``read_holder()`` runs on a short-lived worker thread with a PC/SC
context it alone uses (borrowed from a small idle pool), because SCardTransmit has no timeout of its
own: a mute card blocks it for as long as the card stays in the reader, and only a thread we can
walk away from lets the caller keep its deadline.

State reasons: ``pcscd_down`` (0x8010001D and friends), ``no_reader``; rarely ``pcsc_error`` (any
other PC/SC failure) and ``pcscd_unresponsive`` (the probe itself timed out).

Why not pyscard's CardMonitor: it is a process-wide singleton, polls with a 60 s CardRequest and
stops for good when pcscd goes away. A kiosk must survive pcscd restarts and reader hot-plug, so the
watcher re-establishes its context and re-lists readers itself.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from smartcard import scard

from devices.base import (
    CardHolder,
    CardRemoved,
    DeviceError,
    DeviceState,
    DeviceTimeout,
    DeviceUnavailable,
    StaffBadge,
    UnsupportedCard,
)
from devices.card import protocol

log = logging.getLogger(__name__)

T = TypeVar("T")
ReaderCallback = Callable[[str], None]

# pcsc-lite's pseudo reader: listing it in SCardGetStatusChange wakes the call when a reader is
# plugged in or out, so hot-plug is seen at once rather than at the next poll.
PNP_NOTIFICATION = "\\\\?PnP?\\Notification"

# pyscard hands some HRESULTs back as negative ints on some builds; compare them unsigned.
_MASK = 0xFFFFFFFF
_OK = scard.SCARD_S_SUCCESS
_TIMEOUT = scard.SCARD_E_TIMEOUT & _MASK
_CANCELLED = scard.SCARD_E_CANCELLED & _MASK
_NO_READERS = scard.SCARD_E_NO_READERS_AVAILABLE & _MASK
_SERVICE_DOWN = frozenset(
    code & _MASK
    for code in (
        scard.SCARD_E_NO_SERVICE,  # 0x8010001D: pcscd not running
        scard.SCARD_E_SERVICE_STOPPED,  # 0x8010001E: pcscd went away under us
        scard.SCARD_E_INVALID_HANDLE,  # our context died with the old pcscd
        scard.SCARD_F_COMM_ERROR,  # the socket to pcscd broke
    )
)
_CARD_GONE = frozenset(
    code & _MASK for code in (scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD)
)
_READER_GONE = frozenset(
    code & _MASK for code in (scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE)
)
_CARD_UNUSABLE = frozenset(
    code & _MASK
    for code in (
        scard.SCARD_W_UNRESPONSIVE_CARD,  # no ATR: upside down, a memory card, dirty contacts
        scard.SCARD_W_UNPOWERED_CARD,
        scard.SCARD_W_UNSUPPORTED_CARD,
        scard.SCARD_E_PROTO_MISMATCH,
    )
)
_SHARING_VIOLATION = scard.SCARD_E_SHARING_VIOLATION & _MASK

_NOT_THERE = scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_IGNORE

# pcscd polls readers without interrupt support (vpcd among them) every 400 ms, so after a failed
# transmit the removal can take that long to show; wait a little longer than one poll.
_REMOVAL_GRACE_S = 0.6
_RETRY_BUSY_S = 0.05
_IDLE_CONTEXTS = 2


class _StaleContextError(Exception):
    """A read's first call found its PC/SC context dead (pcscd restarted or down)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"{code:#010x}")
        self.code = code


def _code(hresult: int) -> int:
    return int(hresult) & _MASK


def _present(event_state: int) -> bool:
    return bool(event_state & scard.SCARD_STATE_PRESENT) and not event_state & _NOT_THERE


def _event_count(event_state: int) -> int:
    # pcsc-lite keeps a per-reader card event counter in the high word of dwEventState; it moves
    # on every insertion and removal, so a card swapped between two polls still shows.
    return (event_state >> 16) & 0xFFFF


def card_transitions(previous: int | None, current: int) -> tuple[bool, bool]:
    """(removed, inserted) between two event states of a reader; ``previous`` None: first look."""
    if previous is None:
        return (False, _present(current))
    was, now = _present(previous), _present(current)
    swapped = was and now and _event_count(previous) != _event_count(current)
    return (was and (not now or swapped), now and (not was or swapped))


def _service_error(action: str, code: int) -> DeviceError:
    if code in _SERVICE_DOWN:
        return DeviceUnavailable(
            f"{action}: pcscd not available ({code:#010x})", reason="pcscd_down"
        )
    if code in _READER_GONE:
        return DeviceUnavailable(f"{action}: reader gone ({code:#010x})", reason="no_reader")
    return DeviceUnavailable(f"{action} failed ({code:#010x})", reason="pcsc_error")


def _run_bounded(work: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``work`` on a daemon thread and wait at most ``timeout`` seconds for it."""
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(work())
        except BaseException as e:  # handed to the caller's thread below
            failure.append(e)

    worker = threading.Thread(target=target, name=f"card-{what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        # The worker stays blocked in pcscd (a mute card holds SCardTransmit until it is pulled);
        # it cleans up its own context when it returns. We keep our deadline.
        raise DeviceTimeout(f"card {what} took longer than {timeout:.1f} s")
    if failure:
        raise failure[0]
    return outcome[0]


@dataclass(frozen=True)
class _Link:
    """One connected card during one read: sends APDUs and tells a pulled card from a bad one."""

    context: Any
    reader: str
    card: Any
    active_protocol: int
    state_at_connect: int  # the reader's event state, with pcsc-lite's event counter
    deadline: float

    def transmit(self, command: bytes) -> bytes:
        hresult, response = scard.SCardTransmit(self.card, self.active_protocol, list(command))
        code = _code(hresult)
        if code == _OK and len(response) >= 2:
            return bytes(response)
        if code in _SERVICE_DOWN or code in _READER_GONE:
            raise _service_error("transmit", code)
        if code in _CARD_GONE:
            raise CardRemoved("card removed during the read")
        # vpcd answers for a pulled card with "transaction failed" or an empty response, and real
        # readers with a comm error, before pcscd's next presence poll marks the card removed.
        if self._card_left():
            raise CardRemoved("card removed during the read")
        raise DeviceUnavailable(f"transmit failed ({code:#010x})", reason="card_io_error")

    def _card_left(self) -> bool:
        wait_s = max(0.0, min(_REMOVAL_GRACE_S, self.deadline - time.monotonic()))
        current = self.state_at_connect & ~scard.SCARD_STATE_CHANGED
        hresult, states = scard.SCardGetStatusChange(
            self.context, int(wait_s * 1000), [(self.reader, current)]
        )
        if _code(hresult) != _OK or not states:
            return False
        now = states[0][1]
        changed = _event_count(now) != _event_count(self.state_at_connect)
        return not _present(now) or changed


class CardReaderDriver:
    """Watches every PC/SC reader (optionally those whose name contains ``reader_filter``) for cards
    and reads social security cards. Survives pcscd restarts and reader hot-plug."""

    def __init__(
        self,
        *,
        reader_filter: str | None = None,
        read_timeout_s: float = 5.0,
        poll_interval_s: float = 0.2,
    ) -> None:
        if read_timeout_s <= 0:
            raise ValueError("read_timeout_s must be above 0")
        if not 0.01 <= poll_interval_s <= 5.0:
            raise ValueError("poll_interval_s must be within 0.01..5 s")
        self._filter = reader_filter or ""
        self._read_timeout_s = read_timeout_s
        self._poll_ms = int(poll_interval_s * 1000)
        self._poll_s = poll_interval_s
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._watcher: threading.Thread | None = None
        self._watch_context: Any = None  # the watcher's PC/SC context, for SCardCancel in stop()
        self._state: DeviceState | None = None  # the watcher's latest view; None before its first
        self._idle_contexts: list[Any] = []  # PC/SC contexts of finished reads, for the next

    # --- public API ---------------------------------------------------------------------------

    def watch(self, on_inserted: ReaderCallback, on_removed: ReaderCallback) -> None:
        """Start the watcher thread; callbacks get the reader name, on the watcher thread.

        A card already in a reader when watching starts (or when pcscd comes back) is reported as
        inserted; every card reported inserted is reported removed before it is reported again.
        """
        with self._lock:
            if self._watcher is not None and self._watcher.is_alive():
                raise RuntimeError("already watching")
            self._stop.clear()
            self._state = None
            self._watcher = threading.Thread(
                target=self._watch_loop,
                args=(on_inserted, on_removed),
                name="card-watcher",
                daemon=True,
            )
            self._watcher.start()

    def read_holder(self, reader: str) -> CardHolder:
        """Connect to the card in ``reader``, read the SSSE profile, disconnect.

        Raises CardRemoved, UnsupportedCard, CardDataInvalid, DeviceTimeout (the whole read is
        bounded by ``read_timeout_s``) or DeviceUnavailable. Never sends a PIN.
        """
        card = self.read_card(reader)
        if not isinstance(card, CardHolder):
            raise UnsupportedCard("a card without the SSSE application", reason="unsupported_card")
        return card

    def read_card(self, reader: str) -> CardHolder | StaffBadge:
        """As ``read_holder``, but a card without the SSSE application that has a UID (a staff
        badge, if listed) comes back as a ``StaffBadge`` instead of UnsupportedCard."""
        deadline = time.monotonic() + self._read_timeout_s
        return _run_bounded(lambda: self._read(reader, deadline), self._read_timeout_s, "read")

    def state(self) -> DeviceState:
        """ok; fault("pcscd_down"); fault("no_reader"). From the watcher when it runs."""
        with self._lock:
            watching = self._watcher is not None and self._watcher.is_alive()
            if watching and self._state is not None:
                return self._state
        try:
            return _run_bounded(self._probe, max(self._poll_s, 1.0) * 2, "probe")
        except DeviceTimeout:
            return DeviceState.fault("pcscd_unresponsive")

    def stop(self) -> None:
        """Stop the watcher (within about a poll interval); reads in flight finish on their own."""
        self._stop.set()
        with self._lock:
            watcher, context = self._watcher, self._watch_context
        if context is not None:
            scard.SCardCancel(context)  # wakes SCardGetStatusChange at once
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout=self._poll_s + 2.0)
        with self._lock:
            self._watcher = None
            idle, self._idle_contexts = self._idle_contexts, []
        for context in idle:
            scard.SCardReleaseContext(context)

    # --- reading ------------------------------------------------------------------------------

    def _read(self, reader: str, deadline: float) -> CardHolder | StaffBadge:
        context = self._borrow_context()
        try:
            holder = self._read_with(context, reader, deadline)
        except _StaleContextError:
            # The pooled context predates a pcscd restart; nothing reached the card yet, so one
            # try on a fresh context tells "pcscd is back" from "pcscd is down".
            scard.SCardReleaseContext(context)
            context = self._establish()
            try:
                holder = self._read_with(context, reader, deadline)
            except _StaleContextError as stale:
                scard.SCardReleaseContext(context)
                raise _service_error("reader state", stale.code) from None
            except BaseException:
                self._return_context(context)
                raise
        except BaseException:
            self._return_context(context)
            raise
        self._return_context(context)
        return holder

    @staticmethod
    def _establish() -> Any:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if _code(hresult) != _OK:
            raise _service_error("establish context", _code(hresult))
        return context

    def _borrow_context(self) -> Any:
        # Opening a context costs pcscd a new client thread (about 0.2-0.8 ms, as much as the
        # whole read); reads reuse idle ones. A read borrows its context exclusively, so a read
        # stuck on a mute card never holds up the next one.
        with self._lock:
            if self._idle_contexts:
                return self._idle_contexts.pop()
        return self._establish()

    def _return_context(self, context: Any) -> None:
        with self._lock:
            if len(self._idle_contexts) < _IDLE_CONTEXTS:
                self._idle_contexts.append(context)
                return
        scard.SCardReleaseContext(context)

    def _read_with(
        self, context: Any, reader: str, deadline: float
    ) -> CardHolder | StaffBadge:
        # The reader's event counter now, so a failed transmit can tell "card pulled" apart.
        hresult, states = scard.SCardGetStatusChange(
            context, 0, [(reader, scard.SCARD_STATE_UNAWARE)]
        )
        if _code(hresult) in _SERVICE_DOWN:
            raise _StaleContextError(_code(hresult))
        if _code(hresult) not in (_OK, _TIMEOUT):
            raise _service_error("reader state", _code(hresult))
        before = states[0][1] if states else scard.SCARD_STATE_UNAWARE
        if before & _NOT_THERE:
            raise DeviceUnavailable("reader not found", reason="no_reader")
        if not _present(before):
            raise CardRemoved("no card in the reader")
        card, active_protocol = self._connect(context, reader, deadline)
        link = _Link(context, reader, card, active_protocol, before, deadline)
        try:
            session = protocol.read_card_session()
            command = next(session)
            while True:
                if time.monotonic() > deadline:
                    raise DeviceTimeout("card read deadline passed")
                try:
                    command = session.send(link.transmit(command))
                except StopIteration as finished:
                    card_read: CardHolder | StaffBadge = finished.value
                    return card_read
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)

    def _connect(self, context: Any, reader: str, deadline: float) -> tuple[Any, int]:
        while True:
            hresult, card, active_protocol = scard.SCardConnect(
                context,
                reader,
                scard.SCARD_SHARE_SHARED,
                scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1,
            )
            code = _code(hresult)
            if code == _OK:
                return card, int(active_protocol)
            if code in _CARD_GONE:
                raise CardRemoved("card left before connect")
            if code in _CARD_UNUSABLE:
                raise UnsupportedCard(
                    f"card does not answer ({code:#010x})", reason="card_unresponsive"
                )
            if code == _SHARING_VIOLATION and time.monotonic() + _RETRY_BUSY_S < deadline:
                time.sleep(_RETRY_BUSY_S)  # another application holds it exclusively for now
                continue
            if code == _SHARING_VIOLATION:
                raise DeviceTimeout("reader busy", reason="reader_busy")
            raise _service_error("connect", code)

    # --- watching -----------------------------------------------------------------------------

    def _probe(self) -> DeviceState:
        hresult, context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if _code(hresult) != _OK:
            return self._fault_for(_code(hresult))
        try:
            readers, code = self._list_readers(context)
            if code != _OK:
                return self._fault_for(code)
            return DeviceState.ok() if readers else DeviceState.fault("no_reader")
        finally:
            scard.SCardReleaseContext(context)

    @staticmethod
    def _fault_for(code: int) -> DeviceState:
        return DeviceState.fault("pcscd_down" if code in _SERVICE_DOWN else "pcsc_error")

    def _list_readers(self, context: Any) -> tuple[list[str], int]:
        hresult, readers = scard.SCardListReaders(context, [])
        code = _code(hresult)
        if code == _NO_READERS:
            return [], _OK
        if code != _OK:
            return [], code
        return [r for r in readers if self._filter in r], _OK

    def _set_state(self, state: DeviceState) -> None:
        with self._lock:
            if state != self._state:
                log.info("card reader state: %s %s", state.health, state.reason)
            self._state = state

    def _watch_loop(self, on_inserted: ReaderCallback, on_removed: ReaderCallback) -> None:
        known: dict[str, int] = {}  # reader -> last event state (CHANGED bit cleared)

        def notify(callback: ReaderCallback, reader: str) -> None:
            try:
                callback(reader)
            except Exception:  # a listener's bug must not stop the watcher
                log.exception("card callback failed for reader %s", reader)

        def forget(readers: list[str]) -> None:
            for reader in readers:
                if _present(known.pop(reader, 0)):
                    notify(on_removed, reader)

        context: Any = None
        pnp_state = scard.SCARD_STATE_UNAWARE
        while not self._stop.is_set():
            if context is None:
                hresult, new_context = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
                if _code(hresult) != _OK:
                    self._set_state(self._fault_for(_code(hresult)))
                    forget(list(known))
                    self._stop.wait(self._poll_s)
                    continue
                context, pnp_state = new_context, scard.SCARD_STATE_UNAWARE
                with self._lock:
                    self._watch_context = context
            readers, code = self._list_readers(context)
            if code == _OK:
                self._set_state(DeviceState.ok() if readers else DeviceState.fault("no_reader"))
                forget([r for r in known if r not in readers])  # unplugged readers
                query = [(PNP_NOTIFICATION, pnp_state)]
                query += [(r, known.get(r, scard.SCARD_STATE_UNAWARE)) for r in readers]
                hresult, states = scard.SCardGetStatusChange(context, self._poll_ms, query)
                code = _code(hresult)
            if code == _OK:
                for reader, reported, _atr in states:
                    event_state = reported & ~scard.SCARD_STATE_CHANGED
                    if reader == PNP_NOTIFICATION:
                        pnp_state = event_state
                        continue
                    removed, inserted = card_transitions(known.get(reader), event_state)
                    known[reader] = event_state
                    if removed:
                        notify(on_removed, reader)
                    if inserted:
                        notify(on_inserted, reader)
                continue
            if code in (_TIMEOUT, _CANCELLED) or code in _READER_GONE:
                continue  # nothing happened, stop() woke us, or a reader left mid-call: re-list
            # pcscd went away (or the context broke): every card we knew is gone for us; a new
            # context is tried every poll interval until pcscd answers again.
            self._set_state(self._fault_for(code))
            forget(list(known))
            with self._lock:
                self._watch_context = None
            scard.SCardReleaseContext(context)
            context = None
            self._stop.wait(self._poll_s)
        if context is not None:
            with self._lock:
                self._watch_context = None
            scard.SCardReleaseContext(context)
