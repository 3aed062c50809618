"""How health and status look, in one place, so every page shows them alike."""

from __future__ import annotations

from datetime import UTC, datetime

from portal.project.statuses import HEALTH_LEVELS, Health

HEALTH_ICON = {"failing": "✖", "stale": "◆", "warning": "▲", "unknown": "○", "healthy": "●"}
HEALTH_COLOR = {
    "failing": "red",
    "stale": "violet",
    "warning": "orange",
    "unknown": "gray",
    "healthy": "green",
}
# The same colours where CSS draws them (a table's cells), readable on light and dark themes.
HEALTH_CSS = {
    "failing": "#e0393e",
    "stale": "#8e59d4",
    "warning": "#e8871a",
    "unknown": "#808495",
    "healthy": "#21a366",
}
assert set(HEALTH_ICON) == set(HEALTH_COLOR) == set(HEALTH_CSS) == set(HEALTH_LEVELS)


def health_label(health: Health) -> str:
    """Markdown: a coloured mark and the word (colour alone is not enough to read it)."""
    return f":{HEALTH_COLOR[health.level]}[{HEALTH_ICON[health.level]} {health.level}]"


def health_text(health: Health) -> str:
    """Plain text for tables: the mark and the word."""
    return f"{HEALTH_ICON[health.level]} {health.level}"


def tests_label(health: Health) -> str:
    total = health.tests_passed + health.tests_failed + health.tests_warned
    if not total:
        return "no results"
    parts = [f"{health.tests_passed}/{total} passing"]
    if health.tests_failed:
        parts.append(f"{health.tests_failed} failing")
    if health.tests_warned:
        parts.append(f"{health.tests_warned} warning")
    return ", ".join(parts)


def ago(moment: datetime | None) -> str:
    """'3 h ago' style, for freshness at a glance."""
    if moment is None:
        return "never"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (datetime.now(UTC) - moment).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit} ago"
    return "just now"
