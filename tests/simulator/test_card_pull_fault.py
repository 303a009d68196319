"""The "pull card during the next read" fault: the slot, the rig's panel backend and the panel.

No pcscd here: the test plays vpcd itself on a loopback port (2-byte big-endian length +
payload, 1-byte payloads are control codes), so it runs beside the one machine-wide pcscd.
"""

from __future__ import annotations

import json
import socket
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devices.card.protocol import SSSE_AID
from simulator.cli import RigBackend
from simulator.panel import ControlPanel
from simulator.rig import RigOptions, SimulatorRig
from simulator.vcard import VirtualCard, VirtualCardSlot

PERSON_ID = "11010519491231002X"
SELECT_SSSE = bytes([0x00, 0xA4, 0x04, 0x00, len(SSSE_AID)]) + SSSE_AID
SELECT_EF05 = bytes.fromhex("00A4000002EF05")
GET_ATR = b"\x04"


class FakeVpcd:
    """The reader's end of one vpcd slot: accepts the card and sends it APDUs, as pcscd would."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(5.0)
        self.port: int = self._listener.getsockname()[1]
        self._card: socket.socket | None = None

    def accept(self) -> None:
        """Wait for the card to connect (be inserted) and read its ATR."""
        if self._card is not None:
            self._card.close()  # the connection of a card taken out before
        self._card, _ = self._listener.accept()
        self._card.settimeout(5.0)
        assert self.exchange(GET_ATR) is not None

    def exchange(self, payload: bytes) -> bytes | None:
        """Send one message; the card's answer, or None when the card left (closed the socket)."""
        assert self._card is not None
        try:
            self._card.sendall(struct.pack("!H", len(payload)) + payload)
            head = self._receive(2)
            if head is None:
                return None
            return self._receive(struct.unpack("!H", head)[0])
        except (ConnectionResetError, BrokenPipeError):
            return None

    def _receive(self, count: int) -> bytes | None:
        assert self._card is not None
        data = b""
        while len(data) < count:
            chunk = self._card.recv(count - len(data))
            if not chunk:
                return None
            data += chunk
        return data

    def read_holder(self) -> list[bytes | None]:
        """The start of a card read: SELECT the SSSE application, GET RESPONSE, SELECT EF05."""
        select = self.exchange(SELECT_SSSE)
        assert select is not None and select[0] == 0x61
        get_response = self.exchange(bytes([0x00, 0xC0, 0x00, 0x00, select[1]]))
        return [select, get_response, self.exchange(SELECT_EF05)]

    def close(self) -> None:
        if self._card is not None:
            self._card.close()
        self._listener.close()


@pytest.fixture
def vpcd() -> Iterator[FakeVpcd]:
    reader = FakeVpcd()
    yield reader
    reader.close()


@pytest.fixture
def slot(vpcd: FakeVpcd) -> Iterator[VirtualCardSlot]:
    with VirtualCardSlot(vpcd.port) as card_slot:
        yield card_slot


def card() -> VirtualCard:
    return VirtualCard.ssse(id_number=PERSON_ID, name="张三")


def wait_until_empty(slot: VirtualCardSlot) -> None:
    deadline = time.monotonic() + 3.0
    while slot.card is not None:
        assert time.monotonic() < deadline, "the card was never pulled"
        time.sleep(0.01)


def test_armed_with_no_card_the_next_card_is_pulled_in_the_middle_of_its_read(
    vpcd: FakeVpcd, slot: VirtualCardSlot
) -> None:
    slot.pull_next_card_mid_read(2)
    assert slot.pull_armed
    assert slot.pulled_mid_read_at is None
    slot.insert(card())
    vpcd.accept()
    _select, get_response, select_ef05 = vpcd.read_holder()
    # The application answered, then the card left before its records were read.
    assert get_response is not None and get_response.endswith(b"\x90\x00")
    assert select_ef05 is None
    wait_until_empty(slot)
    assert not slot.pull_armed
    pulled_at = slot.pulled_mid_read_at
    assert pulled_at is not None and pulled_at.tzinfo is not None


def test_armed_with_a_card_in_it_waits_for_the_next_card(
    vpcd: FakeVpcd, slot: VirtualCardSlot
) -> None:
    slot.insert(card())
    vpcd.accept()
    assert None not in vpcd.read_holder()  # the terminal's read of this card is over
    slot.pull_next_card_mid_read(2)
    # Whatever else this card is asked, it stays in: the fault is for the next one.
    assert None not in vpcd.read_holder()
    assert slot.card is not None and slot.pull_armed
    slot.remove()
    slot.insert(card())
    vpcd.accept()
    assert vpcd.read_holder()[2] is None
    wait_until_empty(slot)


def test_a_disarmed_fault_pulls_nothing(vpcd: FakeVpcd, slot: VirtualCardSlot) -> None:
    slot.pull_next_card_mid_read(2)
    slot.cancel_pull()
    assert not slot.pull_armed
    slot.insert(card())
    vpcd.accept()
    assert None not in vpcd.read_holder()
    assert slot.card is not None and slot.pulled_mid_read_at is None


def test_the_fault_needs_at_least_one_apdu(slot: VirtualCardSlot) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        slot.pull_next_card_mid_read(0)


# --- through the control panel, on the rig's own backend ------------------------------------


@pytest.fixture
def rig(tmp_path: Path, vpcd: FakeVpcd) -> Iterator[SimulatorRig]:
    # Nothing started: the backend only needs the card slot and the terminal's config.
    rig = SimulatorRig(RigOptions(workdir=tmp_path, start_terminal=False))
    rig.card_slot = VirtualCardSlot(vpcd.port)
    yield rig
    rig.card_slot.close()


@pytest.fixture
def panel(rig: SimulatorRig) -> Iterator[ControlPanel]:
    panel = ControlPanel(RigBackend(rig), port=0)
    panel.start()
    yield panel
    panel.stop()


def post(panel: ControlPanel, path: str, body: dict[str, object]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        panel.url.rstrip("/") + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def devices(panel: ControlPanel) -> dict[str, object]:
    with urllib.request.urlopen(panel.url + "api/state", timeout=5) as answer:
        state = json.loads(answer.read())
    assert isinstance(state["devices"], dict), state
    return state["devices"]


def test_the_panel_arms_the_pull_with_no_card_in_and_says_when_it_fired(
    panel: ControlPanel, vpcd: FakeVpcd
) -> None:
    # It used to answer 502 "RuntimeError: no card to pull" (and log a traceback).
    assert post(panel, "/api/card/pull-mid-read", {}) == (200, {"ok": True, "armed": True})
    shown = devices(panel)
    assert (shown["card_pull_armed"], shown["card_pulled_at"]) == (True, None)

    assert post(panel, "/api/card/insert", {"kind": "ssse"})[0] == 200
    vpcd.accept()
    assert vpcd.read_holder()[2] is None
    deadline = time.monotonic() + 3.0
    while devices(panel)["card_present"]:
        assert time.monotonic() < deadline, "the card was never pulled"
        time.sleep(0.02)
    shown = devices(panel)
    assert shown["card_pull_armed"] is False
    # When it fired, in the terminal's zone (Asia/Shanghai by default), as receipts print it.
    local = shown["card_pulled_at_local"]
    assert isinstance(local, str) and local.endswith(" CST"), local
    assert str(shown["card_pulled_at"]).endswith("+08:00")


def test_the_panel_disarms_the_pull(panel: ControlPanel, vpcd: FakeVpcd) -> None:
    post(panel, "/api/card/pull-mid-read", {})
    assert post(panel, "/api/card/pull-mid-read", {"armed": False}) == (
        200,
        {"ok": True, "armed": False},
    )
    assert devices(panel)["card_pull_armed"] is False


def test_the_panels_zone_is_the_one_in_the_terminals_config(
    rig: SimulatorRig, tmp_path: Path
) -> None:
    assert RigBackend(rig).terminal_zone().key == "Asia/Shanghai"  # no config yet: the default
    (tmp_path / "terminal.toml").write_text('[terminal]\ntimezone = "Asia/Tokyo"\n')
    assert RigBackend(rig).terminal_zone().key == "Asia/Tokyo"
