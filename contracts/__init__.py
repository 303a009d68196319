"""What the terminal and the central side must agree on: MQTT topics and payloads, OTA metadata."""
