"""QR/barcode scanner: a serial line (pyserial) or a keyboard wedge (python-evdev, optional)."""
