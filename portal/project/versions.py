"""dbt model versions: the versions of one model (`version`, `latest_version`, `deprecation_date`
on each manifest node), which of them is the latest, and how they read in one line.

dbt keeps one manifest node per version (`model.pkg.name.v2`), and its selectors see each one;
people think of one model with versions. The catalog lists the model once, as its latest
version (the one `ref('name')` resolves to), and names every version there.
"""

from __future__ import annotations

import functools
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from portal.project.artifacts import Manifest


@dataclass(frozen=True)
class ModelVersion:
    version: str  # as dbt wrote it ("2", "10b")
    unique_id: str
    relation_name: str | None
    deprecation_date: datetime | None  # UTC; after it, dbt warns whoever refs this version
    latest: bool  # what an unpinned ref('name') resolves to
    prerelease: bool  # newer than the latest: built, but no ref reaches it without `v=`

    @property
    def label(self) -> str:
        return f"v{self.version}"

    def deprecated(self, now: datetime | None = None) -> bool:
        return is_past(self.deprecation_date, now)


def is_past(deprecation_date: datetime | None, now: datetime | None = None) -> bool:
    """Deprecated: past its deprecation date (a date still to come is a warning, not yet that)."""
    return deprecation_date is not None and deprecation_date <= (now or datetime.now(UTC))


def _older(version: Any, other: Any) -> bool:
    # dbt's UnparsedVersion.__lt__: as numbers when both parse as numbers, else as strings, so
    # 10 is newer than 9 but "10b" older than "9".
    try:
        return float(version) < float(other)
    except (TypeError, ValueError):
        return str(version) < str(other)


def _compare(a: Any, b: Any) -> int:
    return -1 if _older(a, b) else 1 if _older(b, a) else 0


def _text(version: Any) -> str:
    """1 and 1.0 as dbt's YAML gave them, without a float's trailing `.0` for whole numbers."""
    if isinstance(version, float) and version.is_integer():
        return str(int(version))
    return str(version)


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return None  # dbt validated it when parsing; an unreadable one is no deprecation here
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def model_versions(manifest: Manifest) -> dict[str, tuple[ModelVersion, ...]]:
    """Every versioned model node's unique id -> all versions of its model, oldest first.

    The latest is dbt's `latest_version` when a node of that version exists, else the highest
    (dbt's own default when a model names no latest). Unversioned nodes are not in the map.
    """
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for raw in (manifest.raw.get("nodes") or {}).values():
        if raw.get("resource_type") == "model" and raw.get("version") is not None:
            groups[(raw.get("package_name", ""), raw["name"])].append(raw)
    found: dict[str, tuple[ModelVersion, ...]] = {}
    for nodes in groups.values():
        nodes.sort(key=functools.cmp_to_key(lambda a, b: _compare(a["version"], b["version"])))
        named = {_text(n["version"]) for n in nodes}
        latest = next(
            (_text(n.get("latest_version")) for n in nodes if n.get("latest_version") is not None), None
        )
        if latest not in named:
            latest = _text(nodes[-1]["version"])
        latest_raw = next(n for n in nodes if _text(n["version"]) == latest)
        versions = tuple(
            ModelVersion(
                version=_text(n["version"]),
                unique_id=n["unique_id"],
                relation_name=n.get("relation_name"),
                deprecation_date=_date(n.get("deprecation_date")),
                latest=_text(n["version"]) == latest,
                prerelease=_older(latest_raw["version"], n["version"]),
            )
            for n in nodes
        )
        for version in versions:
            found[version.unique_id] = versions
    return found


def latest_of(versions: tuple[ModelVersion, ...]) -> ModelVersion:
    return next(v for v in versions if v.latest)


def versions_text(versions: tuple[ModelVersion, ...], now: datetime | None = None) -> str:
    """ "v1 (deprecated), v2 (latest), v3 (prerelease)": the versions as the catalog names them."""

    def one(version: ModelVersion) -> str:
        notes = [
            word
            for word, applies in (
                ("latest", version.latest),
                ("prerelease", version.prerelease),
                ("deprecated", version.deprecated(now)),
            )
            if applies
        ]
        return version.label + (f" ({', '.join(notes)})" if notes else "")

    return ", ".join(one(v) for v in versions)


__all__ = ["ModelVersion", "is_past", "latest_of", "model_versions", "versions_text"]
