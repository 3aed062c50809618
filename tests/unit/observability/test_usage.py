"""Usage analytics on a real catalog database: recording, per-day and per-consumer aggregates."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from portal import audit
from portal.auth.identity import Identity
from portal.errors import InvalidInput
from portal.observability import usage


class CatalogOnly:
    """What usage needs of the portal service: its catalog database sessions."""

    def __init__(self, path: Path) -> None:
        from catalog_db.session import open_catalog

        self.sessions = open_catalog(f"sqlite:///{path}")


NOW = datetime(2026, 3, 10, 12, tzinfo=UTC)


@pytest.fixture
def service(tmp_path: Path) -> CatalogOnly:
    service = CatalogOnly(tmp_path / "catalog.db")
    events = [
        ("ann", "dp_a", "ui", 100, NOW - timedelta(hours=1)),
        ("ann", "dp_a", "api", 50, NOW - timedelta(hours=2)),
        ("bob", "dp_a", "ui", 10, NOW - timedelta(days=1, hours=1)),
        ("bob", "dp_b", "cli", 5, NOW - timedelta(days=2)),
        ("carl", "dp_b", "api", None, NOW - timedelta(days=40)),  # outside 30 days
    ]
    for user, product, face, rows, at in events:
        assert audit.record_read(
            service, Identity(user), product, face=face, rows=rows, duration_ms=10.0, at=at
        )
    return service


def test_usage_by_day_and_face(service: CatalogOnly) -> None:
    days = usage.usage_by_day(service, days=30, now=NOW)
    assert [(d.day, d.face, d.queries, d.rows) for d in days] == [
        (date(2026, 3, 8), "cli", 1, 5),
        (date(2026, 3, 9), "ui", 1, 10),
        (date(2026, 3, 10), "api", 1, 50),
        (date(2026, 3, 10), "ui", 1, 100),
    ]
    assert sum(d.queries for d in usage.usage_by_day(service, "dp_b", days=90, now=NOW)) == 2


def test_top_consumers_and_leaderboard(service: CatalogOnly) -> None:
    consumers = usage.top_consumers(service, days=30, now=NOW)
    assert [(c.user, c.queries, c.rows, c.products) for c in consumers] == [
        ("ann", 2, 150, 1),
        ("bob", 2, 15, 2),
    ]
    assert consumers[0].last_at == NOW - timedelta(hours=1)
    assert [c.user for c in usage.top_consumers(service, "dp_b", days=90, now=NOW)] == ["bob", "carl"]
    board = usage.leaderboard(service, days=30, now=NOW)
    assert [(b.product, b.queries, b.users, b.rows) for b in board] == [
        ("dp_a", 3, 2, 160),
        ("dp_b", 1, 1, 5),
    ]
    assert board[0].mean_duration_ms == 10.0


def test_recording_never_breaks_the_read(service: CatalogOnly, caplog: pytest.LogCaptureFixture) -> None:
    with pytest.raises(InvalidInput, match="usage is recorded for ui, api, cli"):
        audit.record_read(service, Identity("ann"), "dp_a", face="email", rows=1, duration_ms=1.0)
    with service.sessions.begin() as session:
        session.execute(text("DROP TABLE usage_events"))
    with caplog.at_level(logging.ERROR, logger="portal.observability.usage"):
        assert not audit.record_read(service, Identity("ann"), "dp_a", face="ui", rows=1, duration_ms=1.0)
    assert "could not record usage of dp_a by ann" in caplog.text
