"""Keyboard-wedge scanner: key codes to codes (US layout, shift, keypad), and the evdev driver as
far as this machine lets it run.

The kernel here has no uinput (no /dev/uinput, not in /proc/misc, no module to load) and no input
devices, so the grab and the read of a real event node run only where uinput works; the tests that
need it are skipped elsewhere and say why.
"""

import os
import queue
import string
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.codes import progress_url
from devices.base import DeviceState, Health
from devices.scanner.protocol import (
    KEY_CAPSLOCK,
    KEY_DOWN,
    KEY_ENTER,
    KEY_KPENTER,
    KEY_LEFTCTRL,
    KEY_LEFTSHIFT,
    KEY_REPEAT,
    KEY_RIGHTSHIFT,
    KEY_UP,
    US_KEYS,
    Discarded,
    DiscardReason,
    ScanKind,
    ScannedCode,
    ScannerReason,
    WedgeDecoder,
)
from devices.scanner.wedge import WedgeScanner

KEY_TAB = 15
KEY_F1 = 59
KEY_C = 46
KEY_KP1 = 79
KEY_KP0 = 82
KEY_1 = 2

# How a US keyboard types each character: the main block before the keypad, unshifted first.
_TYPING: dict[str, tuple[int, bool]] = {}
for _code, (_plain, _shifted) in US_KEYS.items():
    _TYPING.setdefault(_plain, (_code, False))
    _TYPING.setdefault(_shifted, (_code, True))
PRINTABLE = "".join(sorted(_TYPING))


class Keyboard:
    """Presses keys on a decoder as a scanner does: a few ms apart, shift around capitals."""

    def __init__(self, decoder: WedgeDecoder, step_s: float = 0.002) -> None:
        self.decoder = decoder
        self.now = 1000.0
        self.step_s = step_s
        self.out: list[str | Discarded] = []

    def event(self, code: int, value: int) -> None:
        self.now += self.step_s
        item = self.decoder.feed(code, value, self.now)
        if item is not None:
            self.out.append(item)

    def tap(self, code: int) -> None:
        self.event(code, KEY_DOWN)
        self.event(code, KEY_UP)

    def type(self, text: str, shift: int = KEY_LEFTSHIFT) -> None:
        for char in text:
            code, shifted = _TYPING[char]
            if shifted:
                self.event(shift, KEY_DOWN)
            self.tap(code)
            if shifted:
                self.event(shift, KEY_UP)

    def scan(self, text: str) -> None:
        self.type(text)
        self.tap(KEY_ENTER)

    def pause(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def keyboard() -> Keyboard:
    return Keyboard(WedgeDecoder())


def test_every_printable_ascii_character_is_in_the_us_table() -> None:
    assert set(PRINTABLE) == set(string.printable) - set("\t\n\r\x0b\x0c")


@given(st.text(alphabet=PRINTABLE, min_size=1, max_size=80).filter(lambda t: t.strip() != ""))
def test_typed_text_comes_back_as_typed(text: str) -> None:
    board = Keyboard(WedgeDecoder())
    board.scan(text)
    assert board.out == [text]
    assert board.decoder.unknown_keys == 0


def test_a_receipt_code_typed_by_a_wedge_is_a_receipt(keyboard: Keyboard) -> None:
    url = progress_url("https://hub.example.gov.cn", "L-T0001-20261207-0007")
    keyboard.type(url, shift=KEY_RIGHTSHIFT)
    keyboard.tap(KEY_KPENTER)
    assert keyboard.out == [url]


def test_codes_follow_each_other(keyboard: Keyboard) -> None:
    for text in ("first", "SECOND", "3rd?"):
        keyboard.scan(text)
    assert keyboard.out == ["first", "SECOND", "3rd?"]


def test_keypad_digits_are_digits_whatever_shift_or_num_lock_say(keyboard: Keyboard) -> None:
    keyboard.tap(KEY_KP1)
    keyboard.event(KEY_LEFTSHIFT, KEY_DOWN)
    keyboard.tap(KEY_KP0)
    keyboard.event(KEY_LEFTSHIFT, KEY_UP)
    keyboard.tap(69)  # KEY_NUMLOCK
    keyboard.tap(KEY_KP1)
    keyboard.tap(KEY_KPENTER)
    assert keyboard.out == ["101"]
    assert keyboard.decoder.unknown_keys == 0


def test_caps_lock_turns_letters_only(keyboard: Keyboard) -> None:
    keyboard.tap(KEY_CAPSLOCK)
    keyboard.type("abc1")
    keyboard.event(KEY_LEFTSHIFT, KEY_DOWN)
    keyboard.tap(_TYPING["a"][0])
    keyboard.tap(KEY_1)
    keyboard.event(KEY_LEFTSHIFT, KEY_UP)
    keyboard.tap(KEY_CAPSLOCK)
    keyboard.type("d")
    keyboard.tap(KEY_ENTER)
    assert keyboard.out == ["ABC1a!d"]


def test_unknown_keys_are_dropped_and_counted(keyboard: Keyboard) -> None:
    keyboard.type("ab")
    keyboard.tap(KEY_F1)
    keyboard.tap(KEY_TAB)
    keyboard.tap(0x2FF)  # beyond any keyboard
    keyboard.event(KEY_LEFTCTRL, KEY_DOWN)
    keyboard.tap(KEY_C)  # Ctrl+C is a shortcut, not a "c"
    keyboard.event(KEY_LEFTCTRL, KEY_UP)
    keyboard.type("c")
    keyboard.tap(KEY_ENTER)
    assert keyboard.out == ["abc"]
    assert keyboard.decoder.unknown_keys == 4


def test_auto_repeat_and_key_ups_type_nothing(keyboard: Keyboard) -> None:
    code = _TYPING["x"][0]
    keyboard.event(code, KEY_DOWN)
    keyboard.event(code, KEY_REPEAT)
    keyboard.event(code, KEY_REPEAT)
    keyboard.event(code, KEY_UP)
    keyboard.event(KEY_ENTER, KEY_REPEAT)
    keyboard.tap(KEY_ENTER)
    assert keyboard.out == ["x"]


def test_enter_alone_is_no_code(keyboard: Keyboard) -> None:
    keyboard.tap(KEY_ENTER)
    keyboard.type("   ")
    keyboard.tap(KEY_ENTER)
    assert keyboard.out == []


def test_a_gap_in_the_keys_drops_the_part_before_it(keyboard: Keyboard) -> None:
    keyboard.type("lost-enter")
    keyboard.pause(2.0)
    keyboard.scan("next")
    assert keyboard.out == [Discarded(DiscardReason.INCOMPLETE), "next"]
    keyboard.type("cut")
    keyboard.pause(2.0)
    keyboard.tap(KEY_ENTER)  # Enter after the gap: the part before it is gone, no empty code
    assert keyboard.out[2:] == [Discarded(DiscardReason.INCOMPLETE)]


def test_a_shift_held_across_a_gap_still_counts(keyboard: Keyboard) -> None:
    keyboard.event(KEY_LEFTSHIFT, KEY_DOWN)
    keyboard.pause(2.0)
    keyboard.tap(_TYPING["q"][0])
    keyboard.event(KEY_LEFTSHIFT, KEY_UP)
    keyboard.tap(KEY_ENTER)
    assert keyboard.out == ["Q"]


def test_an_over_long_code_is_dropped_and_the_next_one_read() -> None:
    board = Keyboard(WedgeDecoder(max_length=8))
    board.scan("123456789012")
    board.scan("12345678")
    assert board.out == [Discarded(DiscardReason.TOO_LONG), "12345678"]


def test_reset_and_release_all_forget_a_partial_code_and_held_keys(keyboard: Keyboard) -> None:
    keyboard.event(KEY_LEFTSHIFT, KEY_DOWN)
    keyboard.type("ab")
    assert keyboard.decoder.reset() == Discarded(DiscardReason.INCOMPLETE)
    assert keyboard.decoder.reset() is None
    keyboard.decoder.release_all()  # the device was reopened: its shift key-up is lost
    keyboard.scan("ab")
    assert keyboard.out == ["ab"]


def test_decoder_settings_are_checked() -> None:
    with pytest.raises(ValueError):
        WedgeDecoder(max_length=0)
    with pytest.raises(ValueError):
        WedgeDecoder(key_gap_s=0)


def test_the_key_table_matches_the_kernels_names() -> None:
    ecodes = pytest.importorskip("evdev.ecodes")
    names = {
        "1234567890": "KEY_{}",
        "qwertyuiopasdfghjklzxcvbnm": "KEY_{}",
    }
    for chars, pattern in names.items():
        for char in chars:
            assert US_KEYS[getattr(ecodes, pattern.format(char.upper()))][0] == char
    for name, plain in {
        "KEY_MINUS": "-",
        "KEY_EQUAL": "=",
        "KEY_LEFTBRACE": "[",
        "KEY_RIGHTBRACE": "]",
        "KEY_SEMICOLON": ";",
        "KEY_APOSTROPHE": "'",
        "KEY_GRAVE": "`",
        "KEY_BACKSLASH": "\\",
        "KEY_COMMA": ",",
        "KEY_DOT": ".",
        "KEY_SLASH": "/",
        "KEY_SPACE": " ",
        "KEY_KPASTERISK": "*",
        "KEY_KPMINUS": "-",
        "KEY_KPPLUS": "+",
        "KEY_KPDOT": ".",
        "KEY_KPSLASH": "/",
        "KEY_KPEQUAL": "=",
        **{f"KEY_KP{digit}": str(digit) for digit in range(10)},
    }.items():
        assert US_KEYS[getattr(ecodes, name)][0] == plain, name
    assert (ecodes.EV_KEY, ecodes.KEY_ENTER, ecodes.KEY_KPENTER) == (1, KEY_ENTER, KEY_KPENTER)
    assert (ecodes.KEY_LEFTSHIFT, ecodes.KEY_RIGHTSHIFT, ecodes.KEY_CAPSLOCK) == (
        KEY_LEFTSHIFT,
        KEY_RIGHTSHIFT,
        KEY_CAPSLOCK,
    )


# --- the evdev driver -----------------------------------------------------------------------------


def _ignore(_code: ScannedCode) -> None:
    pass


@pytest.fixture
def scanners() -> Iterator[list[WedgeScanner]]:
    started: list[WedgeScanner] = []
    yield started
    for scanner in started:
        scanner.stop()


def started(scanners: list[WedgeScanner], scanner: WedgeScanner) -> WedgeScanner:
    scanners.append(scanner)
    scanner.start()
    return scanner


def test_evdev_is_imported_only_when_a_wedge_scanner_starts() -> None:
    # A terminal with a serial scanner need not have python-evdev at all.
    probe = (
        "import sys, devices.scanner.wedge, devices.scanner.serial_driver; "
        "print('evdev' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.stdout.strip() == "False"


def test_without_evdev_the_scanner_reports_its_driver_missing(
    scanners: list[WedgeScanner], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "evdev", None)  # what an uninstalled package looks like
    scanner = started(scanners, WedgeScanner(on_code=_ignore, path="/dev/input/event0"))
    assert scanner.state() == DeviceState.fault(ScannerReason.DRIVER_MISSING)


def test_a_missing_event_node_is_absent(scanners: list[WedgeScanner]) -> None:
    pytest.importorskip("evdev")
    scanner = started(
        scanners, WedgeScanner(on_code=_ignore, path="/dev/input/by-id/usb-Scanner-event-kbd")
    )
    assert scanner.state() == DeviceState.fault(ScannerReason.ABSENT)


def test_a_scanner_named_but_not_plugged_in_is_absent(scanners: list[WedgeScanner]) -> None:
    pytest.importorskip("evdev")
    scanner = WedgeScanner(
        on_code=_ignore, name="Honeywell 1900", vendor_id=0x0C2E, product_id=0x0B61
    )
    assert started(scanners, scanner).state() == DeviceState.fault(ScannerReason.ABSENT)


def test_nodes_that_are_not_input_devices_are_passed_over_when_searching_by_name(
    scanners: list[WedgeScanner], tmp_path: Path
) -> None:
    pytest.importorskip("evdev")
    (tmp_path / "event0").write_bytes(b"")
    (tmp_path / "event1").symlink_to("/dev/null")
    scanner = WedgeScanner(on_code=_ignore, name="Scanner", input_dir=str(tmp_path))
    assert started(scanners, scanner).state() == DeviceState.fault(ScannerReason.ABSENT)


def test_a_node_that_is_not_an_input_device_is_refused(scanners: list[WedgeScanner]) -> None:
    pytest.importorskip("evdev")
    scanner = started(scanners, WedgeScanner(on_code=_ignore, path="/dev/null"))
    assert scanner.state() == DeviceState.fault(ScannerReason.OPEN_FAILED)


def test_stop_is_bounded_and_start_after_stop_works(scanners: list[WedgeScanner]) -> None:
    pytest.importorskip("evdev")
    scanner = WedgeScanner(on_code=_ignore, path="/nonexistent/event", reopen_s=30)
    for _ in range(2):
        scanner.start()
        with pytest.raises(RuntimeError):
            scanner.start()
        began = time.monotonic()
        scanner.stop()
        assert time.monotonic() - began < 1.0  # not the 30 s between reopen attempts
        assert scanner.state().health is Health.FAULT


def test_wedge_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="path, a name"):
        WedgeScanner(on_code=_ignore)
    with pytest.raises(ValueError, match="go together"):
        WedgeScanner(on_code=_ignore, vendor_id=0x0C2E)
    with pytest.raises(ValueError):
        WedgeScanner(on_code=_ignore, path="/dev/null", read_timeout_s=0)


# --- against a virtual keyboard (uinput), where the kernel has it ---------------------------------


def _uinput_usable() -> bool:
    try:
        evdev = __import__("evdev")
        device = evdev.UInput(name="kiosk-probe")
    except Exception:
        return False
    device.close()
    return True


needs_uinput = pytest.mark.skipif(
    not os.path.exists("/dev/uinput") or not _uinput_usable(),
    reason="no usable /dev/uinput (kernel without uinput): the real grab and read are not run",
)


@needs_uinput
def test_a_virtual_keyboard_is_read_grabbed_and_picked_up_again() -> None:
    evdev = pytest.importorskip("evdev")
    name = f"kiosk-test-scanner-{os.getpid()}"
    keys = sorted({code for code, _ in _TYPING.values()} | {KEY_ENTER, KEY_LEFTSHIFT})
    codes: queue.Queue[ScannedCode] = queue.Queue()

    def plug() -> Any:
        return evdev.UInput({evdev.ecodes.EV_KEY: keys}, name=name)

    def scan(device: Any, text: str) -> None:
        for char in text + "\n":
            code, shifted = _TYPING[char] if char != "\n" else (KEY_ENTER, False)
            if shifted:
                device.write(evdev.ecodes.EV_KEY, KEY_LEFTSHIFT, 1)
            device.write(evdev.ecodes.EV_KEY, code, 1)
            device.write(evdev.ecodes.EV_KEY, code, 0)
            if shifted:
                device.write(evdev.ecodes.EV_KEY, KEY_LEFTSHIFT, 0)
            device.syn()

    def wait_state(scanner: WedgeScanner, health: Health) -> None:
        deadline = time.monotonic() + 5
        while scanner.state().health is not health:
            assert time.monotonic() < deadline, scanner.state()
            time.sleep(0.02)

    virtual = plug()
    time.sleep(0.3)  # udev makes the node
    scanner = WedgeScanner(on_code=codes.put, name=name, read_timeout_s=0.05, reopen_s=0.1)
    scanner.start()
    try:
        wait_state(scanner, Health.OK)
        # The grab holds: a second reader of the same node sees none of the keys.
        node = next(path for path in evdev.list_devices() if evdev.InputDevice(path).name == name)
        other = evdev.InputDevice(node)
        url = progress_url("https://hub.example.gov.cn", "SB20261207000123")
        scan(virtual, url)
        code = codes.get(timeout=5)
        assert code.kind is ScanKind.RECEIPT and code.text == url
        with pytest.raises(BlockingIOError):
            list(other.read())
        with pytest.raises(OSError):
            other.grab()  # EBUSY: ours
        other.close()
        # Unplug and plug back: the same driver picks it up and grabs it again.
        virtual.close()
        wait_state(scanner, Health.FAULT)
        assert scanner.state().reason == ScannerReason.OFFLINE
        virtual = plug()
        wait_state(scanner, Health.OK)
        scan(virtual, "AGAIN-123")
        assert codes.get(timeout=5).text == "AGAIN-123"
    finally:
        scanner.stop()
        virtual.close()
