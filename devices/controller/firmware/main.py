"""Co-processor firmware: door and tamper switches, temperature, fan, status light, host watchdog.

Runs at boot on a Raspberry Pi Pico (MicroPython), and unchanged in the simulator. One loop: wait
up to LOOP_MS for UART input, answer every complete frame, then sample the switches and the
sensor, drive fan, light and relay, and feed the RP2040's own watchdog, which resets the board if
this loop ever stops (a bug, a hung peripheral).

Protocol: nothing but ``hello`` is served until a hello carrying our dictionary hash arrived
(``error no_session``): a host of another dictionary would misread every other field. A request
repeating the last one's sequence number and bytes is a retransmission: it gets the answer we sent
before, and is not done twice. Events go out only within a session, except ``boot``, sent once at
start so a host that was talking to us learns at once that we restarted.
"""

import random
import select
import time

import config
import dictionary
import machine
import wire
from debounce import Debouncer
from light import Light
from thermal import Average, Thermal, centi_celsius
from watchdog import CUT, RESTORE, HostWatchdog

_RESET_CAUSES = {
    machine.PWRON_RESET: "power_on",
    machine.WDT_RESET: "firmware_watchdog",
}


def reset_cause_name() -> str:
    return _RESET_CAUSES.get(machine.reset_cause(), "other")


class Clock:
    """Milliseconds since boot as a plain int: ticks_ms wraps (2**30 on rp2), uptime must not."""

    def __init__(self) -> None:
        self._last = time.ticks_ms()
        self.now_ms = 0

    def tick(self) -> int:
        current = time.ticks_ms()
        self.now_ms += time.ticks_diff(current, self._last)
        self._last = current
        return self.now_ms


class Firmware:
    """The board's state and its answers; ``step()`` is one pass of the main loop."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.codec = wire.Codec(dictionary.MESSAGES)
        self.framer = wire.Framer()
        self.uart = machine.UART(
            config.UART_ID,
            baudrate=config.UART_BAUDRATE,
            tx=machine.Pin(config.UART_TX_PIN),
            rx=machine.Pin(config.UART_RX_PIN),
            timeout=0,
            rxbuf=config.UART_RXBUF,
        )
        self.poller = select.poll()
        self.poller.register(self.uart, select.POLLIN)
        self.door_pin = machine.Pin(config.DOOR_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
        self.tamper_pin = machine.Pin(config.TAMPER_PIN, machine.Pin.IN, machine.Pin.PULL_UP)
        self.fan_pin = machine.Pin(config.FAN_PIN, machine.Pin.OUT, value=1 - config.FAN_ON_LEVEL)
        self.relay_pin = machine.Pin(
            config.RELAY_PIN, machine.Pin.OUT, value=1 - config.RELAY_CUT_LEVEL
        )
        self.led_pin = machine.Pin(config.LED_PIN, machine.Pin.OUT, value=config.LED_ON_LEVEL)
        self.sensor = machine.ADC(config.TEMP_ADC_CHANNEL)
        self.boot_id = random.getrandbits(16)
        self.reset_cause = reset_cause_name()
        now = self.clock.tick()
        self.door = Debouncer(self.door_pin.value(), config.SWITCH_SETTLE_MS)
        self.tamper = Debouncer(self.tamper_pin.value(), config.SWITCH_SETTLE_MS)
        self.thermal = Thermal(
            config.FAN_ON_CC, config.FAN_OFF_CC, config.ALARM_CC, config.ALARM_BAND_CC
        )
        self.average = Average(config.TEMP_AVERAGE)
        self.light = Light("ok")
        self.watchdog = HostWatchdog(
            config.WATCHDOG_TIMEOUT_S * 1000,
            config.GRACE_S * 1000,
            config.POWER_OFF_S * 1000,
            now,
        )
        self.session = False
        self.last_rx_ms = 0
        self.last_request = b""  # seq + id + payload of the last request answered
        self.last_answer = b""  # and the frame we answered it with
        self.next_sample_ms = 0
        self.next_report_ms = config.TEMP_REPORT_MS
        self.sample_temperature(now)
        self.send_event(
            "boot",
            {"boot_id": self.boot_id, "reset_cause": self.reset_cause, "power_cycles": 0},
            always=True,
        )

    # --- the UART ---------------------------------------------------------------------------------

    def send_event(
        self, name: str, values: dict[str, int | bool | str], always: bool = False
    ) -> None:
        if not (self.session or always):
            return
        msg_id, payload = self.codec.encode(name, values)
        self.uart.write(wire.frame(wire.EVENT_SEQ, msg_id, payload))

    def answer(self, seq: int, name: str, values: dict[str, int | bool | str]) -> bytes:
        msg_id, payload = self.codec.encode(name, values)
        return wire.frame(seq, msg_id, payload)

    def receive(self, seq: int, msg_id: int, payload: bytes, now: int) -> None:
        request = bytes((seq, msg_id)) + payload
        if seq != wire.EVENT_SEQ and request == self.last_request and msg_id != 0x01:
            self.uart.write(self.last_answer)  # a retransmission: our answer was lost
            return
        reply = self.serve(seq, msg_id, payload, now)
        self.last_request, self.last_answer = request, reply
        self.uart.write(reply)

    def serve(self, seq: int, msg_id: int, payload: bytes, now: int) -> bytes:
        try:
            name, direction, values = self.codec.decode(msg_id, payload)
        except wire.CodecError:
            code = "unknown_message" if msg_id not in self.codec.by_id else "bad_payload"
            return self.answer(seq, "error", {"code": code})
        if direction != "command":
            return self.answer(seq, "error", {"code": "unknown_message"})
        if name == "hello":
            # Always answered with our own hash: that is how the host sees a mismatch.
            self.session = values["dictionary_hash"] == dictionary.DICTIONARY_HASH
            return self.answer(
                seq,
                "hello_answer",
                {
                    "dictionary_hash": dictionary.DICTIONARY_HASH,
                    "firmware_version": config.FIRMWARE_VERSION,
                },
            )
        if not self.session:
            return self.answer(seq, "error", {"code": "no_session"})
        if name == "ping":
            return self.answer(seq, "pong", {"token": values["token"]})
        if name == "get_status":
            return self.answer(seq, "status", self.status(now))
        if name == "kick":
            self.watchdog.kick(now)
            return self.answer(seq, "ack", {})
        if name == "set_light":
            if not self.light.set(str(values["pattern"]), now):
                return self.answer(seq, "error", {"code": "bad_value"})
            return self.answer(seq, "ack", {})
        if name == "set_watchdog":
            return self.answer(seq, *self.set_watchdog(values))
        if name == "set_thermal":
            if not self.thermal.configure(
                int(values["fan_on_cc"]), int(values["fan_off_cc"]), int(values["alarm_cc"])
            ):
                return self.answer(seq, "error", {"code": "bad_value"})
            self.apply_temperature(self.thermal.temperature_cc)
            return self.answer(seq, "ack", {})
        return self.answer(seq, "error", {"code": "unknown_message"})

    def set_watchdog(
        self, values: dict[str, int | bool | str]
    ) -> tuple[str, dict[str, int | bool | str]]:
        timeout_s, grace_s = int(values["timeout_s"]), int(values["grace_s"])
        power_off_s = int(values["power_off_s"])
        low, high = config.WATCHDOG_LIMITS_S
        off_low, off_high = config.POWER_OFF_LIMITS_S
        if not (
            low <= timeout_s <= high and 0 <= grace_s <= high and off_low <= power_off_s <= off_high
        ):
            return "error", {"code": "bad_value"}
        self.watchdog.configure(timeout_s * 1000, grace_s * 1000, power_off_s * 1000)
        return "ack", {}

    def status(self, now: int) -> dict[str, int | bool | str]:
        return {
            "boot_id": self.boot_id,
            "reset_cause": self.reset_cause,
            "uptime_s": now // 1000,
            "door_open": self.door.level == config.DOOR_OPEN_LEVEL,
            "tamper": self.tamper.level == config.TAMPER_TRIGGERED_LEVEL,
            "temperature_cc": self.thermal.temperature_cc,
            "fan_on": self.thermal.fan_on,
            "temperature_high": self.thermal.high,
            "light": self.light.pattern,
            "power_cycles": self.watchdog.power_cycles,
            "last_cause": self.watchdog.last_cause,
            "watchdog_timeout_s": self.watchdog.timeout_ms // 1000,
            "grace_s": self.watchdog.grace_ms // 1000,
            "grace_left_s": (self.watchdog.grace_left_ms(now) + 999) // 1000,
            "fan_on_cc": self.thermal.fan_on_cc,
            "fan_off_cc": self.thermal.fan_off_cc,
            "alarm_cc": self.thermal.alarm_cc,
        }

    # --- the world --------------------------------------------------------------------------------

    def sample_temperature(self, now: int) -> None:
        raw = self.sensor.read_u16()
        reading = centi_celsius(
            raw, config.ADC_VREF_UV, config.SENSOR_UV_AT_27C, config.SENSOR_UV_PER_C
        )
        self.apply_temperature(self.average.add(reading))
        self.next_sample_ms = now + config.TEMP_SAMPLE_MS

    def apply_temperature(self, temperature_cc: int) -> None:
        fan_changed, high_changed = self.thermal.update(temperature_cc)
        self.fan_pin.value(config.FAN_ON_LEVEL if self.thermal.fan_on else 1 - config.FAN_ON_LEVEL)
        if fan_changed:
            self.send_event("fan", {"on": self.thermal.fan_on})
        if fan_changed or high_changed:
            self.report_temperature()

    def report_temperature(self) -> None:
        self.send_event(
            "temperature",
            {
                "temperature_cc": self.thermal.temperature_cc,
                "fan_on": self.thermal.fan_on,
                "high": self.thermal.high,
            },
        )
        self.next_report_ms = self.clock.now_ms + config.TEMP_REPORT_MS

    def look_around(self, now: int) -> None:
        if self.door.update(self.door_pin.value(), now):
            self.send_event("door", {"open": self.door.level == config.DOOR_OPEN_LEVEL})
        if self.tamper.update(self.tamper_pin.value(), now):
            triggered = self.tamper.level == config.TAMPER_TRIGGERED_LEVEL
            self.send_event("tamper", {"triggered": triggered})
        if now >= self.next_sample_ms:
            self.sample_temperature(now)
        if now >= self.next_report_ms:
            self.report_temperature()
        action = self.watchdog.update(now)
        if action == CUT:
            self.relay_pin.value(config.RELAY_CUT_LEVEL)
            self.light.set("fault", now)
            # The host is going down: whoever talks to us next must handshake again.
            self.send_event(
                "power_cycle",
                {"power_cycles": self.watchdog.power_cycles, "cause": self.watchdog.last_cause},
            )
            self.session = False
        elif action == RESTORE:
            self.relay_pin.value(1 - config.RELAY_CUT_LEVEL)
            self.light.set("attention", now)  # until the host, back up, sets its own pattern
        self.led_pin.value(
            config.LED_ON_LEVEL if self.light.level(now) else 1 - config.LED_ON_LEVEL
        )

    def step(self) -> None:
        self.poller.poll(config.LOOP_MS)
        now = self.clock.tick()
        data = self.uart.read()
        frames: list[tuple[int, int, bytes]] = []
        if data:
            self.last_rx_ms = now
            frames = self.framer.feed(data)
        elif self.framer.pending and now - self.last_rx_ms >= config.RX_IDLE_MS:
            # A frame takes ~20 ms at 115200 baud; a start byte this stale was noise.
            frames = self.framer.expire()
        for seq, msg_id, payload in frames:
            self.receive(seq, msg_id, payload, now)
        self.look_around(now)


def main() -> None:
    # The board's own watchdog first: from here on, a hang anywhere resets the board.
    wdt = machine.WDT(timeout=config.FIRMWARE_WDT_MS)
    firmware = Firmware()
    while True:
        firmware.step()
        wdt.feed()


if __name__ == "__main__":
    main()
