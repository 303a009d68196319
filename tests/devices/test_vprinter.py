"""Virtual ESC/POS printer: status replies, interpreting known byte streams, PNG and text output."""

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from simulator.escpos_render import (
    MAX_PAPER_DOTS,
    BlankRow,
    ChineseMode,
    Command,
    Cut,
    EscPosParser,
    Ignored,
    LineFeed,
    Paper,
    QrModuleSize,
    QrPrint,
    QrStore,
    StatusRequest,
    Text,
    render_png,
    render_text,
)
from simulator.vprinter import PrinterStatus, VirtualPrinter

ESC_INIT = b"\x1b@"
CHINESE_ON = b"\x1c&"
CUT = b"\x1d\x56\x00"


def gb(text: str) -> bytes:
    return text.encode("gb18030")


def qr_commands(data: bytes, module: int = 4) -> bytes:
    """GS ( k: model 2, module size, level M, store, print (as python-escpos 3.1 emits them)."""

    def k(body: bytes) -> bytes:
        return b"\x1d(k" + len(body).to_bytes(2, "little") + body

    return k(b"1A2\x00") + k(b"1C" + bytes((module,))) + k(b"1E1") + k(b"1P0" + data) + k(b"1Q0")


@pytest.fixture
def vprinter(tmp_path: Path) -> Iterator[VirtualPrinter]:
    printer = VirtualPrinter(out_dir=tmp_path / "receipts")
    printer.start()
    yield printer
    printer.stop()


def send(printer: VirtualPrinter, data: bytes) -> None:
    with socket.create_connection(printer.address, timeout=2.0) as sock:
        sock.sendall(data)


def ask_status(sock: socket.socket, n: int) -> bytes:
    sock.sendall(bytes((0x10, 0x04, n)))
    try:
        return sock.recv(16)
    except TimeoutError:
        return b""


def ink_box(image: Image.Image) -> tuple[int, int, int, int]:
    box = ImageOps.invert(image.convert("L")).getbbox()
    assert box is not None, "nothing was drawn"
    return box


# --- DLE EOT --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PrinterStatus.OK, b"\x12\x12\x12\x12"),
        (PrinterStatus.NEAR_END, b"\x12\x12\x12\x1e"),
        (PrinterStatus.PAPER_OUT, b"\x1a\x32\x12\x72"),
        (PrinterStatus.COVER_OPEN, b"\x1a\x16\x12\x12"),
        (PrinterStatus.CUTTER_ERROR, b"\x1a\x52\x1a\x12"),
    ],
)
def test_status_requests_get_valid_epson_bytes(
    vprinter: VirtualPrinter, status: PrinterStatus, expected: bytes
) -> None:
    # Exchange: 10 04 n -> one byte, for n = 1..4, on one connection.
    vprinter.status = status
    with socket.create_connection(vprinter.address, timeout=1.0) as sock:
        replies = b"".join(ask_status(sock, n) for n in (1, 2, 3, 4))
    assert replies == expected
    assert all((b & 0x81) == 0 and (b & 0x12) == 0x12 for b in replies)


def test_silent_printer_answers_nothing_and_garbage_is_invalid(vprinter: VirtualPrinter) -> None:
    vprinter.status = PrinterStatus.SILENT
    with socket.create_connection(vprinter.address, timeout=0.3) as sock:
        assert ask_status(sock, 1) == b""
        vprinter.status = PrinterStatus.GARBAGE
        reply = ask_status(sock, 4)
    assert len(reply) == 1
    assert (reply[0] & 0x81) != 0


# --- interpretation -------------------------------------------------------------------------------


def test_known_byte_stream_renders_to_text(vprinter: VirtualPrinter) -> None:
    stream = (
        ESC_INIT
        + CHINESE_ON
        + b"\x1ba\x01"  # ESC a 1: centre
        + b"\x1d!\x11"
        + gb("参保证明")
        + b"\n\x1d!\x00\x1ba\x00"
        + gb("姓名")
        + b" " * 41
        + gb("张*")
        + b"\n\x1ba\x02No.42\n"
        + b"\x1bd\x02"
        + CUT
    )
    send(vprinter, stream)
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    # 48 columns; the title is 4 characters x 2 columns x double width = 16 -> 16 spaces of pad.
    assert receipt.text == (
        " " * 16 + "参保证明\n" + "姓名" + " " * 41 + "张*\n" + " " * 43 + "No.42\n" + "\n\n"
    )
    assert receipt.complete
    assert receipt.notes == ()
    assert receipt.raw == stream
    assert receipt.index == 1


def test_output_files_hold_png_text_and_raw_bytes(vprinter: VirtualPrinter) -> None:
    stream = ESC_INIT + CHINESE_ON + gb("办件编号 2025-0001") + b"\n" + CUT
    send(vprinter, stream)
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.png_path.name == "receipt-0001.png"
    assert receipt.png_path.with_suffix(".txt").read_text(encoding="utf-8") == receipt.text
    assert receipt.png_path.with_suffix(".bin").read_bytes() == stream
    assert "办件编号 2025-0001" in receipt.text


@pytest.mark.parametrize(("paper_mm", "dots"), [(58, 384), (80, 576)])
def test_png_is_as_wide_as_the_paper(tmp_path: Path, paper_mm: int, dots: int) -> None:
    with VirtualPrinter(out_dir=tmp_path, paper_mm=paper_mm) as printer:
        send(printer, ESC_INIT + CHINESE_ON + gb("社会保险参保证明") + b"\n" + CUT)
        (receipt,) = printer.wait_for_receipts(1, timeout_s=5.0)
    with Image.open(receipt.png_path) as image:
        assert image.width == dots
        left, top, right, bottom = ink_box(image)
        # 8 Chinese characters of 24 dots, left-aligned: the ink spans about 192 dots.
        assert left < 4
        assert 180 <= right <= 196
        assert 18 <= bottom - top <= 26


def test_raw_bytes_leave_out_status_requests(vprinter: VirtualPrinter) -> None:
    with socket.create_connection(vprinter.address, timeout=1.0) as sock:
        sock.sendall(ESC_INIT + CHINESE_ON)
        assert ask_status(sock, 4) == b"\x12"
        sock.sendall(gb("中文") + b"\n" + CUT)
        (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.raw == ESC_INIT + CHINESE_ON + gb("中文") + b"\n" + CUT


def test_without_fs_ampersand_chinese_comes_out_as_mojibake(vprinter: VirtualPrinter) -> None:
    # ESC @ leaves Chinese mode off here, so a driver relying on power-on defaults is caught.
    send(vprinter, ESC_INIT + gb("中文") + b"\n" + CUT)
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert "中文" not in receipt.text
    assert receipt.text.strip() == gb("中文").decode("cp437")


def test_unknown_commands_are_skipped_and_noted(vprinter: VirtualPrinter) -> None:
    stream = (
        ESC_INIT
        + CHINESE_ON
        + b"\x1bz"  # no such ESC command: its two bytes are skipped
        + b"\x1d(E\x03\x00\x01\x02\x03"  # GS ( E: skipped whole by its length field
        + gb("正常")
        + b"\n"
        + CUT
    )
    send(vprinter, stream)
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.text == "正常\n"
    assert receipt.notes == ("unknown command 1b 7a", "GS ( E not rendered")


def test_qr_is_drawn_centred_from_the_stored_data(vprinter: VirtualPrinter) -> None:
    send(vprinter, ESC_INIT + b"\x1ba\x01" + qr_commands(b"ABC", module=4) + CUT)
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.text.splitlines()[0].strip() == "[QR] ABC"
    with Image.open(receipt.png_path) as image:
        left, top, right, bottom = ink_box(image)
        pixels = image.convert("L")
        # "ABC" at level M is a version 1 symbol: 21 modules of 4 dots, centred on 576 dots.
        assert (right - left, bottom - top) == (84, 84)
        assert left == (576 - 84) // 2
        # Finder pattern corners: dark outer ring, light ring, dark 3x3 core.
        assert pixels.getpixel((left + 1, top + 1)) == 0
        assert pixels.getpixel((left + 4 + 1, top + 4 + 1)) == 255
        assert pixels.getpixel((left + 10, top + 10)) == 0


def test_double_size_and_emphasis_are_honoured() -> None:
    parser = EscPosParser()

    def rendered(prefix: bytes) -> Image.Image:
        paper = Paper(576)
        for parsed in parser.feed(ESC_INIT + CHINESE_ON + prefix + gb("保") + b"\n"):
            paper.apply(parsed.command)
        rows, _ = paper.take()
        return render_png(rows, 576)

    def ink(image: Image.Image) -> int:
        histogram = image.histogram()
        return sum(histogram[:128])

    normal = rendered(b"")
    large = rendered(b"\x1d!\x11")
    bold = rendered(b"\x1bE\x01")
    n_box, l_box = ink_box(normal), ink_box(large)
    assert 1.8 <= (l_box[2] - l_box[0]) / (n_box[2] - n_box[0]) <= 2.2
    assert 1.8 <= (l_box[3] - l_box[1]) / (n_box[3] - n_box[1]) <= 2.2
    assert ink(bold) > 1.2 * ink(normal)


def _merge_text(commands: list[Command]) -> list[Command]:
    """Adjacent text runs joined: how text is split into runs depends only on arrival."""
    merged: list[Command] = []
    for command in commands:
        previous = merged[-1] if merged else None
        if (
            isinstance(command, Text)
            and isinstance(previous, Text)
            and previous.wide == command.wide
        ):
            merged[-1] = Text(previous.text + command.text, command.wide)
        else:
            merged.append(command)
    return merged


def test_parsing_is_the_same_however_the_bytes_are_split() -> None:
    stream = (
        ESC_INIT
        + CHINESE_ON
        + gb("姓名𠀀张")  # 𠀀 is a 4-byte GB18030 code
        + b"No.1\n"
        + b"\x10\x04\x04"
        + qr_commands("核验".encode())
        + CUT
    )
    whole = [p.command for p in EscPosParser().feed(stream)]
    trickle = EscPosParser()
    pieces = [p.command for byte in stream for p in trickle.feed(bytes((byte,)))]
    assert trickle.pending == 0
    assert _merge_text(pieces) == _merge_text(whole)
    assert whole[2:5] == [Text("姓名𠀀张", wide=True), Text("No.1", wide=False), LineFeed()]
    assert StatusRequest(4) in whole
    assert QrModuleSize(4) in whole
    assert QrStore("核验".encode()) in whole
    assert whole[-2:] == [QrPrint(), Cut()]


# --- paper and faults -----------------------------------------------------------------------------


def test_paper_runs_out_after_n_lines(vprinter: VirtualPrinter) -> None:
    vprinter.paper_out_after(2)
    lines = b"".join(gb(f"第{i}行") + b"\n" for i in range(1, 5))
    with socket.create_connection(vprinter.address, timeout=1.0) as sock:
        sock.sendall(ESC_INIT + CHINESE_ON + lines + CUT)
        assert ask_status(sock, 4) == b"\x72"  # processed in order: the job came first
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.text == "第1行\n第2行\n"
    assert not receipt.complete
    assert "paper ran out" in receipt.notes
    assert vprinter.status is PrinterStatus.PAPER_OUT


def test_nothing_prints_while_the_cover_is_open(vprinter: VirtualPrinter) -> None:
    vprinter.status = PrinterStatus.COVER_OPEN
    stream = ESC_INIT + CHINESE_ON + gb("不应打印") + b"\n" + CUT
    with socket.create_connection(vprinter.address, timeout=1.0) as sock:
        sock.sendall(stream)
        assert ask_status(sock, 2) == b"\x16"
    assert vprinter.bytes_received == len(stream)
    assert vprinter.receipts() == []


def test_closing_the_connection_renders_pending_content(vprinter: VirtualPrinter) -> None:
    send(vprinter, ESC_INIT + CHINESE_ON + gb("未切纸") + b"\n")
    (receipt,) = vprinter.wait_for_receipts(1, timeout_s=5.0)
    assert receipt.text == "未切纸\n"
    assert not receipt.complete


def test_wait_for_receipts_times_out(vprinter: VirtualPrinter) -> None:
    with pytest.raises(TimeoutError):
        vprinter.wait_for_receipts(1, timeout_s=0.1)


# --- malformed streams: a printer skips what it cannot use and raises nothing ---------------------


def _rendered(stream: bytes) -> tuple[str, list[str]]:
    paper = Paper(576)
    for parsed in EscPosParser().feed(stream):
        paper.apply(parsed.command)
    rows, notes = paper.take()
    render_png(rows, 576)
    return render_text(rows, 576), notes


def test_a_control_byte_after_a_gb18030_lead_byte_is_still_a_command() -> None:
    # "\x81\r" used to be taken as one two-byte character: CR became a glyph, on which Pillow's
    # text layout raised RuntimeError, and an LF taken that way split a printed row in two.
    commands = [p.command for p in EscPosParser().feed(CHINESE_ON + b"\x81\r\x81\n" + gb("保"))]
    assert commands == [
        ChineseMode(True),
        Ignored("invalid GB18030 sequence 81 0d"),
        Ignored(""),  # the CR itself
        Ignored("invalid GB18030 sequence 81 0a"),
        LineFeed(),
        Text("保", wide=True),
    ]
    assert _rendered(CHINESE_ON + b"\x81\r" + gb("保") + b"\x81\x30\x0a\n")[0] == "保0\n\n"


def test_a_decoded_control_character_prints_as_a_replacement_glyph() -> None:
    # 81 30 81 30 is GB18030 for U+0080, a C1 control: nothing Pillow may be asked to draw.
    text, _ = _rendered(CHINESE_ON + b"\x81\x30\x81\x30" + gb("保") + b"\n")
    assert text == "\ufffd保\n"


def test_qr_data_too_long_for_any_symbol_is_noted_not_raised() -> None:
    # qrcode raised ValueError("Invalid version (was 41 ...)") from render_png, which took the
    # printer's connection thread down.
    text, notes = _rendered(ESC_INIT + qr_commands(b"x" * 3000) + CUT)
    assert text == "\n"
    assert notes == ["QR data of 3000 bytes is too long for a symbol: not printed"]


def test_paper_longer_than_the_limit_is_cut_off_and_noted() -> None:
    # 3 bytes of ESC d 255 at 255-dot line spacing used to be 65,025 dots of paper: a few hundred
    # of them asked render_png for gigabytes.
    stream = ESC_INIT + b"\x1b3\xff" + b"\x1bd\xff" * 300 + b"after\n" + CUT
    paper = Paper(576)
    for parsed in EscPosParser().feed(stream):
        paper.apply(parsed.command)
    rows, notes = paper.take()
    assert sum(row.height for row in rows if isinstance(row, BlankRow)) <= MAX_PAPER_DOTS
    assert notes == [f"receipt longer than {MAX_PAPER_DOTS} dots: the rest was not printed"]
    assert render_png(rows, 576).height <= MAX_PAPER_DOTS + 24


def test_qr_data_with_line_breaks_stays_on_its_own_text_line() -> None:
    # The text rendering is one line per printed row; QR data with "\n" in it used to add lines.
    text, _ = _rendered(ESC_INIT + qr_commands(b"a\nb\x00c") + CUT)
    assert text == "[QR] a\\nb\\x00c\n"


def test_a_code_with_no_character_is_one_replacement_glyph_however_the_bytes_arrive() -> None:
    # E4 30 81 30 is a well-formed four-byte code that GB18030 assigns no character. Decoded in
    # one piece with what followed, the codec's recovery read "�0�丂"; cut before 81 40 it read
    # "�0�0" + "丂": what came out depended on how the bytes arrived.
    stream = CHINESE_ON + b"\xe4\x30\x81\x30" + gb("丂")
    whole = [p.command for p in EscPosParser().feed(stream)]
    trickle = EscPosParser()
    pieces = [p.command for byte in stream for p in trickle.feed(bytes((byte,)))]
    assert whole == [ChineseMode(True), Text("\ufffd丂", wide=True)]
    assert _merge_text(pieces) == whole
