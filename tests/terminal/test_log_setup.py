"""The last-resort log filter masks ID-number-shaped text, in messages and in tracebacks."""

import io
import logging

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
