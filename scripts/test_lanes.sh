#!/usr/bin/env bash
# Runs the tests in two lanes at once, one per core: the tests that drive the machine's one pcscd,
# the simulator and the full UI (they must not run beside each other), and everything else.
# Many tests wait on timeouts, sockets and child processes rather than compute, so two lanes
# finish in well under the time of one. Arguments are passed to both pytest runs (-m "not long").
set -uo pipefail
cd "$(dirname "$0")/.."
PYTEST=.venv/bin/pytest
SERIAL=(tests/e2e tests/devices tests/simulator tests/terminal/test_gui.py)
other_log=$(mktemp)
trap 'rm -f "$other_log"' EXIT

ignores=()
for path in "${SERIAL[@]}"; do ignores+=("--ignore=$path"); done
# The second lane keeps no pytest cache: two runs must not write .pytest_cache at once.
"$PYTEST" -q -p no:cacheprovider "$@" "${ignores[@]}" >"$other_log" 2>&1 &
other=$!
"$PYTEST" -q "$@" "${SERIAL[@]}"
serial_status=$?
wait "$other"
other_status=$?
echo
echo "--- the other lane (flows, terminal, fleet, contracts, fuzz, deploy) ---"
cat "$other_log"
if [ "$serial_status" -ne 0 ] || [ "$other_status" -ne 0 ]; then
    exit 1
fi
