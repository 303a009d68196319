"""The appliance: composition root, config, Kivy UI, effect runner, telemetry, automation API."""
