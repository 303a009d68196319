"""Guided flows: the step engine, the errand flows, the catalogue and the domain rules."""
