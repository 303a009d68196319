# Two commands for a newcomer: `make sim` runs the terminal with virtual hardware, `make test`
# runs every check. Both install what they need first and are safe to run again.
.PHONY: sim test setup lint bench clean

VENV := .venv/bin

setup:
	@scripts/setup.sh

sim: setup
	$(VENV)/kiosk-sim $(ARGS)

test: setup
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/lint-imports
	$(VENV)/pytest -q

lint: setup
	$(VENV)/ruff check .
	$(VENV)/mypy
	$(VENV)/lint-imports

bench: setup
	$(VENV)/python -m bench

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache build *.egg-info var
