"""The MicroPython co-processor: door and tamper switches, temperature and fan, light, watchdog."""
