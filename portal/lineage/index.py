"""The selection index of a dbt manifest: `ManifestIndex`, built from the raw manifest.json, and its
on-disk cache for the command line (`load_index`).

`ManifestIndex` holds what dbt's node selector reads (names, fqn, paths, tags, configs, edges) for
every member of dbt's graph, tests and analyses included: dbt's graph operators walk through them
(`@orders` reaches the other parent of a relationships test on `orders`), so leaving them out would
change answers. It is flat lists of builtins, so it pickles into a cache the CLI reads in milliseconds
instead of parsing a 50 MB manifest (`load_index`).

On the CLI's selection path, so it must stay cheap to import (see `portal.lineage`).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import os
import pickle
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from portal.lineage.errors import LineageError, UnknownNodeError
from portal.project.artifacts import gc_paused

if TYPE_CHECKING:
    from portal.project.artifacts import Manifest

# Bump when ManifestIndex's pickled state changes shape: old cache files are then ignored.
INDEX_FORMAT = 2

# The manifest sections whose entries are members of dbt's graph (compilation.Linker.link_graph).
SECTIONS = (
    "nodes", "sources", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "functions"
)  # fmt: skip
# The manifest sections whose entries name a file of their package (graph members or not), which
# tells `path:` what the root project holds on disk.
FILE_SECTIONS = (*SECTIONS, "macros", "docs", "groups")
TEST_TYPES = frozenset({"test", "unit_test"})
# What `dbt ls` lists by default (ListTask.DEFAULT_RESOURCE_VALUES). Analyses and hooks are graph
# members that selection walks through but never lists.
LISTED_TYPES = frozenset({
    "model", "snapshot", "seed", "test", "source", "exposure", "metric", "saved_query", "semantic_model",
    "unit_test", "function",
})  # fmt: skip


# --------------------------------------------------------------------------------------------------
# The index: what dbt's selector reads, as flat lists indexed by node position
# --------------------------------------------------------------------------------------------------


@dataclass(eq=False)
class ManifestIndex:
    """Every member of dbt's graph, column by column; position `i` in each list is the same node."""

    project_name: str | None
    adapter_type: str | None
    unique_ids: list[str]
    resource_types: list[str]
    names: list[str]
    packages: list[str]
    fqns: list[tuple[str, ...]]
    paths: list[str]
    patch_paths: list[str | None]
    tags: list[tuple[str, ...]]
    source_names: list[str | None]
    groups: list[str | None]  # config.group, which dbt's group method reads
    accesses: list[str | None]
    versions: list[Any]
    latest_versions: list[Any]
    test_names: list[str | None]  # the generic test's name (test_metadata.name), or a unit test's name
    parents: list[tuple[int, ...]]
    # The root project's files the manifest knows of (`path:` globs the root project only), or None
    # when an old manifest does not name its project and every member's file counts as the root's.
    project_files: tuple[str, ...] | None = None
    selectors: dict[str, Any] = field(default_factory=dict)  # the manifest's named selectors
    children: list[tuple[int, ...]] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)
    # Configs are only read by `config.` selectors; a cached index loads them on first use.
    _configs: list[dict[str, Any]] | None = None
    _config_loader: Callable[[], list[dict[str, Any]]] | None = None

    def __post_init__(self) -> None:
        if not self.positions:
            self.positions = {uid: i for i, uid in enumerate(self.unique_ids)}
        if not self.children:
            children: list[list[int]] = [[] for _ in self.unique_ids]
            for child, parents in enumerate(self.parents):
                for parent in parents:
                    children[parent].append(child)
            self.children = [tuple(c) for c in children]

    def __len__(self) -> int:
        return len(self.unique_ids)

    @functools.cached_property
    def name_characters(self) -> frozenset[str]:
        """Every character of the fqn parts (package, folders, name) of the members `fqn:` selects:
        a name holding any other character can match none of them."""
        kinds = self.resource_types
        return frozenset("".join(p for i, fqn in enumerate(self.fqns) if kinds[i] != "source" for p in fqn))

    @property
    def configs(self) -> list[dict[str, Any]]:
        if self._configs is None:
            if self._config_loader is None:
                raise LineageError("This lineage index was built without node configs.")
            self._configs = self._config_loader()
        return self._configs

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> ManifestIndex:
        """Index a parsed manifest.json (`Manifest.raw`). Fast: one pass, no validation."""
        with gc_paused():
            return _index_from_raw(raw)

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> ManifestIndex:
        return cls.from_raw(manifest.raw)

    def position(self, unique_id: str) -> int:
        try:
            return self.positions[unique_id]
        except KeyError:
            raise UnknownNodeError(unique_id, self.suggest(unique_id)) from None

    def suggest(self, text: str, limit: int = 5) -> list[str]:
        """Names and unique ids close to `text`, for "did you mean" messages."""
        candidates = set(self.names) | {
            f"{s}.{n}" for s, n in zip(self.source_names, self.names, strict=True) if s
        }
        pool = self.unique_ids if text.count(".") >= 2 else sorted(candidates)
        return difflib.get_close_matches(text, pool, n=limit, cutoff=0.75)

    def _state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _PICKLED_FIELDS}


_PICKLED_FIELDS = (
    "project_name", "adapter_type", "unique_ids", "resource_types", "names", "packages", "fqns", "paths",
    "patch_paths", "tags", "source_names", "groups", "accesses", "versions", "latest_versions",
    "test_names", "parents", "project_files", "selectors", "children", "positions",
)  # fmt: skip


def _members(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for section in SECTIONS:
        for entry in (raw.get(section) or {}).values():
            config = entry.get("config") or {}
            # dbt's graph holds enabled resources only; exposures are always members (_is_graph_member).
            if entry.get("resource_type") == "exposure" or config.get("enabled", True):
                yield entry


def _tags(entry: dict[str, Any]) -> tuple[str, ...]:
    tags = entry.get("tags")
    if tags is None and entry.get("resource_type") == "unit_test":
        tags = (entry.get("config") or {}).get("tags")  # unit tests keep their tags in config only
    return (tags,) if isinstance(tags, str) else tuple(tags or ())


def _test_name(entry: dict[str, Any]) -> str | None:
    resource_type = entry.get("resource_type")
    if resource_type == "unit_test":
        return entry.get("name")
    if resource_type == "test":
        return (entry.get("test_metadata") or {}).get("name")
    return None


def _project_files(raw: dict[str, Any], project: str | None) -> tuple[str, ...] | None:
    """The files of the root project the manifest names: every entry's file and properties file,
    disabled ones and macros included, since dbt's `path:` sees all that is on disk."""
    if not project:
        return None
    entries = [e for section in FILE_SECTIONS for e in (raw.get(section) or {}).values()]
    entries += [e for versions in (raw.get("disabled") or {}).values() for e in versions]
    files = {"dbt_project.yml"}
    for entry in entries:
        if entry.get("package_name") == project:
            patch = entry.get("patch_path") or ""
            files.update(p for p in (entry.get("original_file_path"), patch.partition("://")[2]) if p)
    return tuple(sorted(files))


def _index_from_raw(raw: dict[str, Any]) -> ManifestIndex:
    # One comprehension per column: several times faster than appending field by field.
    intern = sys.intern
    entries = list(_members(raw))
    positions = {entry["unique_id"]: i for i, entry in enumerate(entries)}
    configs = [entry.get("config") or {} for entry in entries]
    metadata = raw.get("metadata") or {}

    def parents(entry: dict[str, Any]) -> tuple[int, ...]:
        depends_on = (entry.get("depends_on") or {}).get("nodes") or ()
        # dbt fails on a dependency it cannot find; the portal shows what it can and skips it.
        found = tuple(positions[d] for d in depends_on if d in positions)
        return found if len(found) < 2 else tuple(dict.fromkeys(found))

    return ManifestIndex(
        project_name=metadata.get("project_name"),
        adapter_type=metadata.get("adapter_type"),
        unique_ids=list(positions),
        resource_types=[intern(e.get("resource_type", "")) for e in entries],
        names=[e.get("name", "") for e in entries],
        packages=[intern(e.get("package_name", "")) for e in entries],
        fqns=[tuple(e.get("fqn") or ()) for e in entries],
        paths=[e.get("original_file_path") or "" for e in entries],
        patch_paths=[e.get("patch_path") for e in entries],
        tags=[_tags(e) for e in entries],
        source_names=[e.get("source_name") for e in entries],
        groups=[c.get("group") for c in configs],
        accesses=[e.get("access") for e in entries],
        versions=[e.get("version") for e in entries],
        latest_versions=[e.get("latest_version") for e in entries],
        test_names=[_test_name(e) for e in entries],
        parents=[parents(e) for e in entries],
        project_files=_project_files(raw, metadata.get("project_name")),
        selectors=dict(raw.get("selectors") or {}),
        positions=positions,
        _configs=configs,
    )


# --------------------------------------------------------------------------------------------------
# The index cache for the command line
# --------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """Where lineage indexes are cached: `$XDG_CACHE_HOME/asgard/lineage` (default `~/.cache/...`)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asgard" / "lineage"


def _cache_file(manifest_path: Path, directory: Path) -> tuple[Path, dict[str, Any]]:
    resolved = manifest_path.resolve()
    stat = resolved.stat()
    identity = {
        "format": INDEX_FORMAT,
        "python": sys.version_info[:2],
        "manifest": str(resolved),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
    }
    # The name's first half identifies the manifest, the second its content, so a rebuilt manifest
    # replaces its old cache file instead of piling up new ones.
    where = hashlib.sha1(str(resolved).encode()).hexdigest()[:16]
    what = hashlib.sha1(repr(sorted(identity.items())).encode()).hexdigest()[:16]
    return directory / f"{where}-{what}.pickle", identity


def load_index(
    manifest_path: Path, *, use_cache: bool = True, directory: Path | None = None
) -> ManifestIndex:
    """The selection index of a manifest file, from the cache when the file has not changed.

    The cache is keyed by the manifest's resolved path, size and mtime and by INDEX_FORMAT. A cache
    that cannot be read or written is ignored: it only ever saves time.
    """
    from portal.project.artifacts import ArtifactError

    directory = directory or cache_dir()
    try:
        cache_path, identity = _cache_file(manifest_path, directory)
    except FileNotFoundError:
        raise ArtifactError(
            f"{manifest_path} does not exist. Run `dbt parse` (or `dbt build`) to create it, "
            "or pass the path of an existing manifest.json."
        ) from None
    if use_cache:
        index = _read_cache(cache_path, identity)
        if index is not None:
            return index
    index = ManifestIndex.from_raw(read_manifest_json(manifest_path))
    if use_cache:
        _write_cache(cache_path, identity, index)
    return index


def read_manifest_json(path: Path) -> dict[str, Any]:
    """manifest.json parsed, with its schema version checked; about twice as fast as plain reading
    because the garbage collector is paused while the ~1M objects of a large manifest are built."""
    from portal.project.artifacts import read_json, schema_version

    raw = read_json(path)
    schema_version(raw, path, "manifest")
    return raw


def _read_cache(path: Path, identity: dict[str, Any]) -> ManifestIndex | None:
    """The cached index, or None when there is none or it is stale, damaged or of another shape."""

    def load_configs() -> list[dict[str, Any]]:
        with open(path, "rb") as handle:
            handle.seek(configs_at)
            configs: list[dict[str, Any]] = pickle.load(handle)
            return configs

    try:
        with open(path, "rb") as handle, gc_paused():
            if pickle.load(handle) != identity:
                return None
            state = pickle.load(handle)
            configs_at = handle.tell()
        return ManifestIndex(**state, _config_loader=load_configs)
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
        return None


def _write_cache(path: Path, identity: dict[str, Any], index: ManifestIndex) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in path.parent.glob(path.name.split("-")[0] + "-*.pickle"):
            stale.unlink(missing_ok=True)
        # Three pickles in one file: identity, the selection state, then configs, which a reader
        # loads only when a `config.` selector asks for them.
        state = index._state()
        # Interned, each repeated folder name and tag is pickled once, not once per node.
        state["fqns"] = [tuple(map(sys.intern, fqn)) for fqn in index.fqns]
        state["tags"] = [tuple(map(sys.intern, tags)) for tags in index.tags]
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as handle:
            for part in (identity, state, index.configs):
                pickle.dump(part, handle, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(handle.name, path)
    except OSError:
        return
