"""Pins and defaults of the co-processor board (a Raspberry Pi Pico), in one place.

Plain module constants, no imports: the simulator reads the pin numbers from here too (which pin is
the relay, the door switch), so the two never disagree.
"""

FIRMWARE_VERSION = "1.0.0"

# --- pins (GPxx numbers) --------------------------------------------------------------------------
UART_ID = 0
UART_TX_PIN = 0  # GP0 -> the Pi's RXD (GPIO15)
UART_RX_PIN = 1  # GP1 <- the Pi's TXD (GPIO14)
UART_BAUDRATE = 115200
UART_RXBUF = 1024  # two full frames and then some: the main loop may be busy for a few ms

# Switches close to ground, the pin pulled up: a closed door (reed contact made) reads 0. A cut or
# unplugged wire then reads as open / triggered, which is the safe way to be wrong.
DOOR_PIN = 2
DOOR_OPEN_LEVEL = 1
TAMPER_PIN = 3
TAMPER_TRIGGERED_LEVEL = 1
SWITCH_SETTLE_MS = 30  # a reed contact bounces for a few ms; a level must hold this long

FAN_PIN = 15  # drives a MOSFET: 1 = fan running
FAN_ON_LEVEL = 1

# The Pi's supply runs through a normally-closed relay: a dead or unflashed co-processor leaves the
# Pi powered. Energising the coil (1) opens the contact and cuts the power.
RELAY_PIN = 16
RELAY_CUT_LEVEL = 1

LED_PIN = 25  # the Pico's own LED, or a panel lamp on the same GP25 through a transistor
LED_ON_LEVEL = 1

# --- temperature: the RP2040's internal sensor on ADC input 4 -----------------------------------
# It measures the die, a few degrees above the cabinet air; good enough to run a fan. Datasheet:
# T = 27 - (V - 0.706) / 0.001721, V the ADC voltage on a 3.3 V reference.
TEMP_ADC_CHANNEL = 4
ADC_VREF_UV = 3_300_000
SENSOR_UV_AT_27C = 706_000
SENSOR_UV_PER_C = 1_721
TEMP_SAMPLE_MS = 100
TEMP_AVERAGE = 4  # samples averaged: the sensor is noisy by about a degree
TEMP_REPORT_MS = 10_000  # a temperature event this often even when nothing changed

# --- defaults, until the host configures them -----------------------------------------------------
FAN_ON_CC = 4500  # centi-degrees: fan on at 45 °C ...
FAN_OFF_CC = 4000  # ... off again below 40 °C (hysteresis: no flapping around one threshold)
ALARM_CC = 6000  # temperature_high from 60 °C ...
ALARM_BAND_CC = 500  # ... until it is back below 55 °C

WATCHDOG_TIMEOUT_S = 60  # no kick for this long (after the grace) cuts the Pi's power
GRACE_S = 180  # after the board's boot and after each power cycle: the Pi boots, the app starts
POWER_OFF_S = 5  # how long the power stays cut: long enough for the Pi's capacitors to drain
WATCHDOG_LIMITS_S = (1, 3600)  # timeout and grace must lie in this range (grace may also be 0)
POWER_OFF_LIMITS_S = (1, 60)

# --- the board's own watchdog (machine.WDT) -------------------------------------------------------
FIRMWARE_WDT_MS = 5000  # the RP2040 allows at most 8388 ms; the main loop feeds it every tick
RX_IDLE_MS = 50  # bytes pending this long without more: the partial frame was noise
LOOP_MS = 10  # longest wait for UART input before the switches, fan and watchdog are looked at
