"""Config is checked where it is read: ranges, choices, and misspelt options fail loudly."""

from pathlib import Path

import pytest

from terminal.app import effect_timeout_s
from terminal.config import ConfigError, load_config, parse_config


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
        ({"terminal": {"id": "T/1"}}, "[terminal] id may hold only"),
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
