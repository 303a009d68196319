"""Config is checked where it is read: ranges, choices, and misspelt options fail loudly."""

import os
import subprocess
import sys
import threading
import tomllib
from pathlib import Path

import pytest

from terminal.app import effect_timeout_s
from terminal.config import ASSUMED_MM_PER_PX, ConfigError, load_config, parse_config

REPO = Path(__file__).resolve().parents[2]


def test_defaults_keep_automation_off() -> None:
    config = parse_config({})
    assert config.automation.enabled is False
    assert config.display.language == "zh_CN"


def test_values_are_read_and_typed() -> None:
    config = parse_config({
        "terminal": {"id": "T-0042", "idle_timeout_s": 90},
        "printer": {"kind": "serial", "serial_device": "/dev/ttyS1", "paper_mm": 58},
        "hub": {"timeout_s": 3},
        "mqtt": {"tls": True},
    })
    assert config.terminal.terminal_id == "T-0042"
    assert config.mqtt.tls is True
    assert config.printer.paper_mm == 58
    assert config.hub.timeout_s == 3.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"printer": {"paper_mm": 70}}, "[printer] paper_mm must be 58 or 80"),
        ({"printer": {"kind": "bluetooth"}}, "[printer] kind must be one of"),
        ({"printer": {"port": "9100"}}, "[printer] port must be int"),
        ({"mqtt": {"tls": "yes"}}, "[mqtt] tls must be bool"),
        ({"mqtt": {"heartbeat_interval_s": 0}}, "[mqtt] heartbeat_interval_s must be above 0"),
        ({"mqtt": {"hearbeat_interval_s": 5}}, "check the spelling: [mqtt] hearbeat"),
        ({"screen": {}}, "unknown section(s): screen"),
        ({"terminal": 5}, "[terminal] must be a table"),
        ({"mqtt": [1, 2]}, "[mqtt] must be a table"),
        ({"terminal": {"id": "T/1"}}, "[terminal] id: terminal id must be 1-64 characters"),
        ({"hub": {"url": "ftp://x"}}, "[hub] url must be http"),
        ({"hub": {"url": "http://"}}, "[hub] url must be http"),
        ({"hub": {"ca_file": "/nonexistent/hub-ca.pem"}}, "[hub] ca_file: no such file"),
        ({"mqtt": {"cert_file": "/nonexistent/t.pem"}}, "[mqtt] cert_file: no such file"),
        ({"terminal": {"timezone": "Asia/Beijing"}}, "[terminal] timezone: unknown zone"),
        ({"printer": {"kind": "usb"}}, "[printer] usb_vendor and usb_product must be set"),
        ({"printer": {"kind": "network", "host": ""}}, "[printer] host must be set"),
    ],
)
def test_bad_values_name_the_option(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in str(caught.value)


def test_file_errors_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[terminal\n", encoding="utf-8")
    with pytest.raises(ConfigError):
        load_config(broken)


def test_the_shipped_production_example_parses_with_automation_off(tmp_path: Path) -> None:
    # The example names certificates that exist only on an installed terminal; point them here.
    example = (Path(__file__).parents[2] / "deploy" / "terminal.toml").read_text("utf-8")
    for name in ("hub-ca.pem", "mqtt-ca.pem"):
        (tmp_path / name).write_text("test", encoding="utf-8")
        example = example.replace(f"/etc/kiosk/{name}", str(tmp_path / name))
    config_path = tmp_path / "terminal.toml"
    config_path.write_text(example, encoding="utf-8")
    config = load_config(config_path)
    assert config.automation.enabled is False
    assert config.display.fullscreen is True


def test_the_effect_backstop_outlasts_every_bounded_job() -> None:
    assert effect_timeout_s(parse_config({})) == 60
    slow = parse_config({"hub": {"timeout_s": 90}, "printer": {"job_timeout_s": 100}})
    assert effect_timeout_s(slow) > 2 * 90
    assert effect_timeout_s(slow) > 100 + 5 * 1.0


# --- what the MQTT contract refuses is refused at load, not by every birth and heartbeat --------


@pytest.mark.parametrize(
    ("terminal", "message"),
    [
        # isalnum() takes any script's letters; a topic level and client id takes ASCII only.
        ({"id": "终端1"}, "[terminal] id: terminal id must be"),
        ({"id": "T" * 65}, "[terminal] id: terminal id must be"),
        ({"site": ""}, "[terminal] site: site must be 1-64 characters"),
        ({"site": "s" * 65}, "[terminal] site: site must be 1-64 characters"),
        ({"site": "tangxia\nsecond line"}, "[terminal] site: site must be"),
    ],
    ids=["chinese-id", "id-65", "site-empty", "site-65", "site-newline"],
)
def test_what_the_mqtt_contract_refuses_is_refused_at_load(
    terminal: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"terminal": terminal})
    assert message in str(caught.value)


def test_what_the_contract_allows_is_allowed() -> None:
    config = parse_config({"terminal": {"id": "T.330300:01", "site": "瑞安市塘下镇便民服务中心"}})
    assert config.terminal.terminal_id == "T.330300:01"


# --- values that would fail only at run time, in a thread, over and over ----------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"hub": {"url": "http://[::1"}}, "[hub] url is not a valid URL"),
        ({"hub": {"url": "http://hub.example:99999"}}, "[hub] url is not a valid URL"),
        ({"hub": {"url": "http://hub.example:0"}}, "[hub] url: port 0"),
        # urlsplit drops the newline without a word: a different host than the file says.
        ({"hub": {"url": "http://hub\n.example"}}, "[hub] url must be a URL with no spaces"),
        ({"hub": {"url": "http://hub .example"}}, "[hub] url must be a URL with no spaces"),
        ({"hub": {"url": "http://user:secret@hub.example"}}, "[hub] url must not carry"),
        ({"hub": {"url": "http://hub..example"}}, "[hub] url must be an IP address or a host"),
        ({"hub": {"timeout_s": 10**400}}, "[hub] timeout_s is out of range"),
        ({"mqtt": {"host": "mqtt example.gov.cn"}}, "[mqtt] host must be an IP address"),
        ({"mqtt": {"host": "mqtt.\x00example"}}, "[mqtt] host must be an IP address"),
        ({"mqtt": {"host": "a" * 64 + ".example"}}, "[mqtt] host must be an IP address"),
        ({"mqtt": {"host": "终端.example"}}, "xn-- form"),
        ({"mqtt": {"host": ""}}, "[mqtt] host must be set while MQTT is enabled"),
        ({"mqtt": {"username": "T-1\x00"}}, "[mqtt] username must not hold control"),
        ({"mqtt": {"username": "u" * 65536}}, "[mqtt] username is longer than MQTT allows"),
        ({"mqtt": {"password": "only-a-password"}}, "[mqtt] password is sent only with"),
        ({"printer": {"host": "printer\t1"}}, "[printer] host must be an IP address"),
        ({"printer": {"kind": "serial", "serial_device": "/dev/tty\x00S1"}},
         "[printer] serial_device must not hold control characters"),
        ({"terminal": {"state_dir": "var/\x00state"}}, "[terminal] state_dir must not hold"),
        ({"terminal": {"state_dir": ""}}, "[terminal] state_dir must not be empty"),
        ({"terminal": {"state_dir": "/var/" + "x" * 300}}, "[terminal] state_dir is too long"),
        ({"hub": {"ca_file": "/etc/" + "c" * 5000}}, "[hub] ca_file is too long"),
        ({"terminal": {"content_dir": "/nonexistent/content"}},
         "[terminal] content_dir: '/nonexistent/content' is not a directory"),
    ],
    ids=lambda value: str(value)[:40] if isinstance(value, str) else None,
)
def test_values_that_would_fail_at_run_time_are_refused_at_load(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    assert message in str(caught.value)


def test_options_paho_would_drop_silently_are_refused(tmp_path: Path) -> None:
    key = tmp_path / "terminal.key"
    key.write_text("key", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"\[mqtt\] key_file is used only with cert_file"):
        parse_config({"mqtt": {"key_file": str(key)}})
    with pytest.raises(ConfigError, match=r"\[hub\] ca_file is used only with an https"):
        parse_config({"hub": {"url": "http://hub.example", "ca_file": str(key)}})


def test_a_state_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    taken = tmp_path / "state"
    taken.write_text("not a directory", encoding="utf-8")
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        parse_config({"terminal": {"state_dir": str(taken)}})


def test_hosts_and_urls_that_work_are_allowed() -> None:
    config = parse_config({
        "printer": {"host": "192.168.1.50"},
        "hub": {"url": "https://xn--fiqs8s.example.gov.cn:8443/api"},
        "mqtt": {"host": "fd00::12", "username": "T-1", "password": "p\x01ss"},
    })
    assert config.mqtt.host == "fd00::12"
    assert parse_config({"hub": {"url": "http://[::1]:8702"}}).hub.url == "http://[::1]:8702"
    assert parse_config({"mqtt": {"host": "broker.local."}}).mqtt.host == "broker.local."


def test_a_huge_value_is_clipped_in_the_message() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"printer": {"port": "9" * 1_000_000}})
    assert len(str(caught.value)) < 200


# --- whatever the file is, load_config says so in a ConfigError ---------------------------------


def _write(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "terminal.toml"
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"[terminal]\nsite = \"\xe5\xa1\x98\xff\"\n", "line 2: not UTF-8 text (byte 0xff)"),
        (b"a = " + b"[" * 500, "nested too deeply"),
        (b"a = " + b"9" * 5000, "a value cannot be read"),
        (b"[hub]\nurl = \"http://[::1\"\n", "[hub] url is not a valid URL"),
        (b"[hub]\ntimeout_s = 1" + b"0" * 400 + b"\n", "[hub] timeout_s is out of range"),
        (b"[terminal]\nstate_dir = \"a\\u0000b\"\n", "[terminal] state_dir must not hold"),
        (b"# comment\n" * 120_000, "a config file is at most 1048576 bytes"),
        (b"terminal = \"T-1\"\n", "[terminal] must be a table"),
    ],
    ids=["not-utf8", "deep", "long-int", "bad-url", "huge-float", "nul-path", "huge", "not-table"],
)
def test_a_bad_file_is_a_config_error(tmp_path: Path, raw: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, raw))
    assert message in str(caught.value)


def test_a_byte_order_mark_is_no_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf[terminal]\nid = \"T-1\"\n")
    assert load_config(path).terminal.terminal_id == "T-1"


def test_what_is_not_a_readable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(tmp_path)
    afile = _write(tmp_path, b"")
    with pytest.raises(ConfigError, match="cannot open the config file: Not a directory"):
        load_config(afile / "terminal.toml")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file whatever its mode")
def test_an_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, b"")
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load_config(path)


def test_a_fifo_is_refused_at_once_instead_of_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "terminal.toml"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def load() -> None:
        try:
            load_config(fifo)
            outcome.append(None)
        except BaseException as e:
            outcome.append(e)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(2.0)
    if reader.is_alive():  # release the reader before failing, or it hangs in open() for good
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        reader.join(2.0)
        pytest.fail("load_config waited for a writer on a FIFO")
    assert isinstance(outcome[0], ConfigError)
    assert "not a regular file" in str(outcome[0])


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"a=\xff\n", "not UTF-8 text"),
        (b"a = " + b"[" * 500, "nested too deeply"),
        (b"[hub]\nurl = \"http://[::1\"\n", "[hub] url is not a valid URL"),
        (b"[terminal]\nid = \"\xe7\xbb\x88\xe7\xab\xaf1\"\n", "[terminal] id: terminal id"),
        (b"[terminal]\nsite = \"\"\n", "[terminal] site: site must be"),
        (b"#\n" * 600_000, "a config file is at most"),
        (None, "is a directory"),
        (b"[terminal]\nstate_dir = \"{tmp}/terminal.toml/state\"\n", "[terminal] state_dir:"),
    ],
    ids=["not-utf8", "deep", "bad-url", "chinese-id", "empty-site", "huge", "directory",
         "state-dir-under-a-file"],
)
def test_kiosk_terminal_exits_2_with_a_message_for_every_bad_file(
    tmp_path: Path, raw: bytes | None, message: str
) -> None:
    if raw is None:
        path = tmp_path
    else:
        # Should a check ever let one through, the terminal that starts must not read cards
        # from a pcscd shared with other tests, nor reach for a broker.
        safe = b'\n[card]\nreader_filter = "no such reader"\n[mqtt]\nenabled = false\n'
        path = _write(tmp_path, raw.replace(b"{tmp}", str(tmp_path).encode()) + safe)
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    done = subprocess.run(
        [sys.executable, "-m", "terminal", "--config", str(path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=30, check=False,
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("kiosk-terminal: "), done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


# --- [display]: the panel's physical size, from which type and targets are sized in mm ----------


@pytest.mark.parametrize(
    ("diagonal_in", "width", "height", "mm_per_px"),
    [(21.5, 1920, 1080, 0.2479), (15.6, 1080, 1920, 0.1799), (7, 800, 480, 0.1906)],
    ids=["21.5-inch", "15.6-inch-portrait", "7-inch"],
)
def test_the_panels_diagonal_gives_its_pixel_pitch(
    diagonal_in: float, width: int, height: int, mm_per_px: float
) -> None:
    display = parse_config(
        {"display": {"diagonal_in": diagonal_in, "width": width, "height": height}}
    ).display
    assert display.diagonal_in == float(diagonal_in)
    assert display.mm_per_px == pytest.approx(mm_per_px, abs=1e-4)


def test_without_a_diagonal_the_pitch_is_the_densest_reference_screens() -> None:
    display = parse_config({"display": {"width": 800, "height": 480}}).display
    assert display.diagonal_in is None
    assert display.mm_per_px == ASSUMED_MM_PER_PX
    # Never coarser than a reference panel: sizes come out at least as large in mm on each.
    densest = parse_config({"display": {"diagonal_in": 15.6, "width": 1080, "height": 1920}})
    assert densest.display.mm_per_px > ASSUMED_MM_PER_PX


@pytest.mark.parametrize(
    ("display", "message"),
    [
        ({"diagonal_in": 4.9}, "[display] diagonal_in is the screen's diagonal in inches, 5 to"),
        ({"diagonal_in": 101}, "diagonal in inches, 5 to 100, not 101.0"),
        ({"diagonal_in": 0}, "[display] diagonal_in is the screen's diagonal in inches"),
        ({"diagonal_in": float("nan")}, "[display] diagonal_in is the screen's diagonal"),
        ({"diagonal_in": float("inf")}, "[display] diagonal_in is the screen's diagonal"),
        ({"diagonal_in": "21.5"}, "[display] diagonal_in must be float, not '21.5'"),
        ({"diagonal_in": True}, "[display] diagonal_in must be float"),
        ({"diagonal_in": 100, "width": 800, "height": 480},
         "[display] a 100-inch screen of 800x480 pixels has 9 pixels per inch"),
        ({"diagonal_in": 5, "width": 7680, "height": 4320}, "check diagonal_in, width and height"),
        ({"diagonal_inch": 7}, "check the spelling: [display] diagonal_inch"),
    ],
    ids=["small", "large", "zero", "nan", "inf", "string", "bool", "coarse", "dense", "typo"],
)
def test_a_bad_diagonal_names_the_option(display: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"display": display})
    assert message in str(caught.value)


def test_the_shipped_example_names_its_panel() -> None:
    text = (REPO / "deploy" / "terminal.toml").read_text("utf-8")
    display = parse_config({"display": tomllib.loads(text)["display"]}).display
    assert display.diagonal_in == 21.5
    assert display.mm_per_px == pytest.approx(0.2479, abs=1e-4)
