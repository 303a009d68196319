"""Helpers shared by the flow tests."""

from devices.base import FieldLine, QrCode, Receipt, TextLine


def receipt_strings(receipt: Receipt) -> list[str]:
    """Every string a receipt prints, in order: text, labels and values, QR data and caption."""
    out: list[str] = []
    for block in receipt.blocks:
        if isinstance(block, TextLine):
            out.append(block.text)
        elif isinstance(block, FieldLine):
            out += [block.label, block.value]
        elif isinstance(block, QrCode):
            out += [block.data, block.caption]
    return out
