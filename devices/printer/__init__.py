"""Receipt printer: ESC/POS over network, USB or serial via python-escpos."""
