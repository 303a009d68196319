"""Virtual hardware at the wire, the simulated service hub, the control panel and `kiosk-sim`."""
