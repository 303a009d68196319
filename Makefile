# Two commands for a newcomer: `make sim` runs the terminal with virtual hardware, `make test`
# runs every check. Both install what they need first and are safe to run again.
.PHONY: sim test test-long setup lint bench fuzz clean

VENV := .venv/bin

setup:
	@scripts/setup.sh

sim: setup
	$(VENV)/kiosk-sim $(ARGS)

test: setup
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/mypy --config-file devices/controller/firmware/mypy.ini devices/controller/firmware
	$(VENV)/lint-imports
	scripts/test_lanes.sh -m "not long"

# Everything make test runs, plus the tests marked long: the screen tests at the full-HD sizes and
# every page of every shipped guide at every size.
test-long: setup
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/mypy --config-file devices/controller/firmware/mypy.ini devices/controller/firmware
	$(VENV)/lint-imports
	scripts/test_lanes.sh

lint: setup
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/mypy --config-file devices/controller/firmware/mypy.ini devices/controller/firmware
	$(VENV)/lint-imports

# The terminal's figures, then the fleet side's (ingest, a 10,000-terminal fleet, detection); the
# exit status says whether every budget was met.
bench: setup
	$(VENV)/python -m bench; status=$$?; $(VENV)/python -m bench.camera || status=1; \
	$(VENV)/python -m bench.controller || status=1; \
	$(VENV)/python -m bench.fleet || status=1; exit $$status

# The property-based fuzz suite at full strength: 100,000 examples per property (make test runs
# the same properties at a few hundred), then a table of what each one really ran.
# No per-test timeout: a property of 100,000 examples takes minutes.
fuzz: setup
	KIOSK_FUZZ=1 $(VENV)/pytest -q --timeout=0 tests/fuzz $(ARGS)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info var
