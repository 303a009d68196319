"""The fleet tests' PostgreSQL: one throwaway cluster per session (``initdb`` + ``pg_ctl`` on a
Unix socket in a temporary directory, fsync off), a fresh schema per test; skipped, saying why,
only where the PostgreSQL server binaries are not installed (scripts/setup.sh installs them)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from fleet.db_cluster import ThrowawayCluster, binaries

NO_POSTGRES = "PostgreSQL server binaries not installed (scripts/setup.sh installs postgresql)"
_schemas = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[ThrowawayCluster]:
    if binaries() is None:
        pytest.skip(NO_POSTGRES)
    cluster = ThrowawayCluster()
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def fresh_schema(cluster: ThrowawayCluster) -> str:
    """A URL whose connections see only a new, empty schema: a database of its own, in effect."""
    import psycopg  # noqa: PLC0415

    name = f"t{next(_schemas)}"
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {name}")  # type: ignore[arg-type]
    return f"{cluster.url()}&options={quote(f'-csearch_path={name}')}"


@pytest.fixture
def pg_url(pg_cluster: ThrowawayCluster) -> str:
    return fresh_schema(pg_cluster)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """Where a store lives, on each backend: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return tmp_path / "fleet.db"
    return fresh_schema(request.getfixturevalue("pg_cluster"))
