"""One simulator rig per module: pcscd + vpcd, printer, hub, mosquitto, Xvfb and the terminal."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from e2e_support import MqttTap, settle_devices, settle_to_attract

from simulator.pcsc import Pcscd
from simulator.rig import RigOptions, SimulatorRig
from simulator.vprinter import PrinterStatus


@pytest.fixture(scope="module")
def shared_pcscd() -> Iterator[Pcscd]:
    """A pcscd for the rigs a module starts itself (one per screen size)."""
    pcscd = Pcscd()
    pcscd.start()
    try:
        yield pcscd
    finally:
        pcscd.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorRig]:
    workdir = tmp_path_factory.mktemp("sim")
    pcscd = Pcscd()
    pcscd.start()
    rig = SimulatorRig(RigOptions(
        workdir=workdir,
        size=(1280, 800),
        printer_port=0,
        hub_port=0,
        automation_port=0,
        pcscd=pcscd,
        heartbeat_interval_s=2,
        idle_timeout_s=10,
        force_xvfb=True,
    ))
    try:
        rig.start()
        yield rig
    finally:
        rig.stop()
        pcscd.close()


@pytest.fixture(scope="module")
def mqtt_tap(rig: SimulatorRig) -> Iterator[MqttTap]:
    tap = MqttTap()
    # A lasting session on the rig's persistent broker: what the terminal sends right after a
    # broker restart waits for the tap even if the terminal reconnects first (it did, in CI).
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-tap", clean_session=False)
    client.reconnect_delay_set(min_delay=1, max_delay=1)
    subscribed = threading.Event()
    client.on_connect = lambda c, *_a: c.subscribe("kiosk/v1/#", qos=1)
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_message = lambda _c, _u, m: tap.add(m.topic, m.payload)
    host, port = rig.broker_address
    client.connect(host, port)
    client.loop_start()
    # Not a message may be missed: the first test starts only once the subscription stands.
    assert subscribed.wait(10), "the MQTT tap could not subscribe"
    try:
        yield tap
    finally:
        client.loop_stop()
        client.disconnect()


@pytest.fixture
def at_attract(rig: SimulatorRig) -> SimulatorRig:
    """Every test starts from a calm terminal: no card, healthy printer and hub, attract shown."""
    assert rig.card_slot is not None and rig.printer is not None and rig.hub is not None
    if rig.card_slot.card is not None:
        rig.card_slot.remove()
    rig.printer.status = PrinterStatus.OK
    rig.hub.set_fault("ok")
    if rig.broker is not None and not rig.broker.running:
        rig.broker.start()
    settle_to_attract(rig)
    settle_devices(rig)
    return rig
