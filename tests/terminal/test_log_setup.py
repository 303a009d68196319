"""The last-resort log filter masks personal data, in messages and in tracebacks."""

import io
import logging

import pytest

from terminal.log_setup import RedactingFilter, redact


def test_redact_masks_id_numbers_and_leaves_other_numbers() -> None:
    assert redact("holder 11010519491231002X read") == "holder 1101**********002X read"
    assert redact("id=34052419800101001x.") == "id=3405**********001x."
    assert redact("case SB20261121000001, port 35963") == "case SB20261121000001, port 35963"


def test_filter_masks_arguments_and_exceptions() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("bad card %s", "11010519491231002X")
        try:
            raise ValueError("number 11010519491231002X")
        except ValueError:
            logger.exception("read failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "11010519491231002X" not in out
    assert out.count("1101**********002X") >= 2  # the message, and the traceback's lines


@pytest.mark.parametrize(
    ("line", "masked"),
    [
        ("holder name=张三 read", "holder name=张* read"),
        ('{"name": "欧阳娜娜", "sex": "female"}', '{"name": "欧***", "sex": "female"}'),
        ("{'holder_name': 'Zhang San'}", "{'holder_name': 'Z********'}"),
        ("full_name=O'Brien,", "full_name=O******,"),
        ("Name: 王", "Name: *"),
        ("姓名：张三丰", "姓名：张**"),
        ("card A12345678 read", "card A******** read"),
        ("bank 6222021234567890123.", "bank 6222***********0123."),
        ("bank 6222 0212 3456 7890", "bank 6222 **** **** 7890"),
        ("phone 13812345678", "phone 138****5678"),
        ("tel=+8613812345678;", "tel=+86138****5678;"),
        ("call +86 138-1234-5678", "call +86 138-****-5678"),
        ("old id 110105491231002", "old id 1101*******1002"),
    ],
)
def test_redact_masks_names_card_numbers_and_phone_numbers(line: str, masked: str) -> None:
    assert redact(line) == masked


@pytest.mark.parametrize(
    "line",
    [
        "2026-05-09 07:35:25,123 INFO terminal.app: first screen ready: attract",
        "at 2026-05-09T07:35:25.123456+08:00, epoch 1746775525 / 1746775525123 ms",
        "clock 1746775525123456 us, 1746775525123456789 ns",
        "MQTT connected to 127.0.0.1:8883; automation on [::1]:47123",
        "hub answered in 0.35 s (350 ms), 1500 ms budget",
        "printer status 0x12 0x1e 0x72; reply 1a 32 12 72; sw=6A82 9000",
        "command 3f2a9c1e-8b7d-4e2f-9a1b-0c3d5e7f9a2b accepted",
        "birth with bdseq=42, seq 123456, outbox 17",
        "case SB20261121000001 rated 5",
        "hostname=kiosk-0001 filename=receipt-0001.png screen_name=attract",
        "rss 199123456 bytes, 12345678901234 bytes written",
    ],
)
def test_redact_leaves_ordinary_log_content_alone(line: str) -> None:
    assert redact(line) == line


def test_a_log_call_with_bad_arguments_does_not_raise_into_its_caller() -> None:
    # Formatting happens in the filter, before logging's own error handling: a "%d" given a str
    # used to raise TypeError out of log.warning() into the code that logged it.
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("test.redaction.bad_args")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("holder %d has id %s", "张三", "11010519491231002X")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    assert "holder %d has id %s (arguments of types str, str did not fit the format)" in out
    assert "张三" not in out and "11010519491231002X" not in out
