"""Temperature: the RP2040 sensor's reading in centi-degrees, the fan's hysteresis and the alarm."""


def centi_celsius(raw_u16: int, vref_uv: int, uv_at_27c: int, uv_per_c: int) -> int:
    """An ADC reading (read_u16, 0..65535) of the internal sensor as centi-degrees Celsius."""
    microvolts = raw_u16 * vref_uv // 65535
    # Integer arithmetic: floats are slow on a Cortex-M0+ without an FPU.
    return 2700 - (microvolts - uv_at_27c) * 100 // uv_per_c


class Thermal:
    """Fan on above ``fan_on_cc`` until below ``fan_off_cc``; alarm (temperature_high) above
    ``alarm_cc`` until below ``alarm_cc - alarm_band_cc``. Both with hysteresis, so a cabinet
    sitting at a threshold does not flap the fan or flood the host with events."""

    def __init__(self, fan_on_cc: int, fan_off_cc: int, alarm_cc: int, alarm_band_cc: int) -> None:
        self.fan_on_cc = fan_on_cc
        self.fan_off_cc = fan_off_cc
        self.alarm_cc = alarm_cc
        self.alarm_band_cc = alarm_band_cc
        self.fan_on = False
        self.high = False
        self.temperature_cc = 2500  # until the first reading; the first update decides
        self._known = False

    def configure(self, fan_on_cc: int, fan_off_cc: int, alarm_cc: int) -> bool:
        """New thresholds; False (nothing changed) unless off < on <= alarm, all in -40..125 °C."""
        if not -4000 <= fan_off_cc < fan_on_cc <= alarm_cc <= 12500:
            return False
        self.fan_on_cc, self.fan_off_cc, self.alarm_cc = fan_on_cc, fan_off_cc, alarm_cc
        return True

    def update(self, temperature_cc: int) -> tuple[bool, bool]:
        """Take a (smoothed) reading; returns (fan changed, alarm changed)."""
        self.temperature_cc = temperature_cc
        fan, high = self.fan_on, self.high
        if temperature_cc >= self.fan_on_cc:
            fan = True
        elif temperature_cc < self.fan_off_cc:
            fan = False
        if temperature_cc >= self.alarm_cc:
            high = True
        elif temperature_cc < self.alarm_cc - self.alarm_band_cc:
            high = False
        first = not self._known
        self._known = True
        fan_changed, high_changed = fan != self.fan_on, high != self.high
        self.fan_on, self.high = fan, high
        if first:
            # The first reading sets the state; only a change after it is news.
            return fan, high
        return fan_changed, high_changed


class Average:
    """Mean of the last ``size`` samples (a ring, no allocation per sample)."""

    def __init__(self, size: int) -> None:
        self._samples = [0] * size
        self._count = 0
        self._next = 0

    def add(self, sample: int) -> int:
        self._samples[self._next] = sample
        self._next = (self._next + 1) % len(self._samples)
        if self._count < len(self._samples):
            self._count += 1
        total = 0
        for index in range(self._count):
            total += self._samples[index]
        return total // self._count
