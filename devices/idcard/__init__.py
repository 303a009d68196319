"""Resident ID card (二代居民身份证) reader: a GA/T 467 SAM_A module on a serial line (pyserial)."""
