"""The alert life cycle and the dashboard's JSON API, as their own modules test them on SQLite,
here once more on PostgreSQL: the same test functions, with this module's ``store`` fixture.

(test_store.py runs on both backends through its parametrized fixture; these modules keep their
SQLite fixtures, so their store-level tests are collected here a second time.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_alerts import (  # noqa: F401  (collected here: pytest runs them with this `store`)
    test_an_acknowledged_alert_stays_acknowledged_until_resolved,
    test_help_requested_events_raise_a_help_alert,
    test_one_alert_while_the_condition_holds_then_resolved,
    test_only_the_lease_holder_sweeps_and_another_takes_over_when_it_dies,
)
from test_web_api import (  # noqa: F401
    api,
    test_a_broker_that_is_down_is_a_503_and_nothing_is_recorded,
    test_a_command_the_store_knows_nothing_of,
    test_a_resolved_alert_cannot_be_acknowledged,
    test_alerts_by_state_and_acknowledging_one,
    test_metrics_from_the_store_at_scrape_time,
    test_one_terminal_with_its_recent_events,
    test_open_help_calls,
    test_private_metrics_want_a_token,
    test_terminals_each_with_liveness_devices_and_alerts,
    tokens,
)
from test_web_support import fill

from fleet.store import FleetStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def store(request: pytest.FixtureRequest, pg_url: str) -> Iterator[FleetStore]:
    """A PostgreSQL store; filled as the dashboard tests fill theirs (the alert tests start from
    an empty one)."""
    opened = FleetStore(pg_url)
    if request.function.__module__ == "test_web_api":
        fill(opened)
    yield opened
    opened.close()
