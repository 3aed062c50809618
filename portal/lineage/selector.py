"""Lineage of a dbt project: the graph, dbt-compatible node selection, and impact analysis.

Two structures, each for one job:

* `ManifestIndex` holds what dbt's node selector reads (names, fqn, paths, tags, configs, edges) for
  every member of dbt's own graph, tests and analyses included: dbt's graph operators walk through them
  (`@orders` reaches the other parent of a relationships test on `orders`), so leaving them out would
  change answers. It is flat lists of builtins, so it pickles into a cache the CLI reads in milliseconds
  instead of parsing a 50 MB manifest (`load_index`).
* `build_graph` gives the networkx DiGraph the UI draws: resources only, with the tests folded into the
  attributes of the node they test.

Selection follows dbt-core 1.11 (`dbt/graph/cli.py`, `selector.py`, `selector_methods.py`,
`selector_spec.py`): the same syntax, methods and set algebra, so `select()` returns what
`dbt ls --select ...` lists on the same manifest. Tests are listed only with `with_tests`, and then the
way dbt's default ("eager") indirect selection adds them: every test with at least one selected parent.

This module must stay cheap to import: the CLI answers in well under a second, so networkx is imported
only where the UI graph is built, and nothing here imports dbt, pandas, plotly or sqlglot.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import pickle
import re
import sys
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch, translate
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from portal.errors import InvalidInput, Kind
from portal.project.artifacts import gc_paused

if TYPE_CHECKING:
    import networkx as nx

    from portal.project.artifacts import Manifest, RunResults

# Bump when ManifestIndex's pickled state changes shape: old cache files are then ignored.
INDEX_FORMAT = 1

# The manifest sections whose entries are members of dbt's graph (compilation.Linker.link_graph).
_SECTIONS = (
    "nodes", "sources", "exposures", "metrics", "semantic_models", "saved_queries", "unit_tests", "functions"
)  # fmt: skip
# Members that do not come from the manifest's `nodes` section: dbt's "parsed node" methods
# (access, group, config, test_name, ...) skip them.
_NOT_PARSED = frozenset(
    {"source", "exposure", "metric", "semantic_model", "saved_query", "unit_test", "function"}
)  # fmt: skip
TEST_TYPES = frozenset({"test", "unit_test"})
# What `dbt ls` lists by default (ListTask.DEFAULT_RESOURCE_VALUES). Analyses and hooks are graph
# members that selection walks through but never lists.
LISTED_TYPES = frozenset({
    "model", "snapshot", "seed", "test", "source", "exposure", "metric", "saved_query", "semantic_model",
    "unit_test", "function",
})  # fmt: skip
# Every dbt resource type (dbt's NodeType), for validating `resource_type:` values.
RESOURCE_TYPES = LISTED_TYPES | {
    "analysis", "operation", "rpc", "sql_operation", "doc", "macro", "group", "fixture"
}  # fmt: skip
# With no --select, dbt selects this union (dbt/graph/cli.py DEFAULT_INCLUDES).
DEFAULT_SELECT = ("fqn:*", "source:*", "exposure:*", "metric:*", "semantic_model:*")
_WILDCARDS = ("*", "?", "[", "]")


class LineageError(InvalidInput):
    """Lineage cannot answer; the message says what was wrong and what to do."""


class SelectorError(LineageError):
    """A selector is not valid dbt selector syntax; the message names the bad part."""


class UnknownNodeError(LineageError):
    """No node has that name or unique id; `suggestions` holds close names."""

    kind = Kind.NOT_FOUND

    def __init__(self, text: str, suggestions: Sequence[str]) -> None:
        hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"No node is called {text!r}.{hint} Pick a name or unique id from the project.")
        self.text = text
        self.suggestions = tuple(suggestions)


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
    "test_names", "parents", "children", "positions",
)  # fmt: skip


def _members(raw: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for section in _SECTIONS:
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


# --------------------------------------------------------------------------------------------------
# Selector syntax
# --------------------------------------------------------------------------------------------------

# One selector part: [@][N+][method[.arg...]:]value[+N], as in dbt's selector_spec.
_CRITERION = re.compile(
    r"""\A
    (?P<childrens_parents>@)?
    (?:(?P<parents_depth>\d*)(?P<parents>\+))?
    (?:(?P<method>[\w.]+):)?
    (?P<value>.*?)
    (?:(?P<children>\+)(?P<children_depth>\d*))?
    \Z""",
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True, slots=True)
class Criterion:
    """One selector part, like `2+tag:nightly+1`."""

    raw: str
    method: str
    arguments: tuple[str, ...]
    value: str
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    childrens_parents: bool = False


# A union (space-separated) of intersections (comma-separated) of criteria.
UnionSpec = tuple[tuple[Criterion, ...], ...]


@dataclass(frozen=True, slots=True)
class SelectionSpec:
    include: UnionSpec
    exclude: UnionSpec
    include_is_default: bool


def _default_method(value: str) -> str:
    if "/" in value or (os.path.altsep and os.path.altsep in value) or os.path.sep in value:
        return "path"
    if value.lower().endswith((".sql", ".py", ".csv")):
        return "file"
    return "fqn"


def parse_criterion(raw: str) -> Criterion:
    match = _CRITERION.match(raw)
    if match is None:  # pragma: no cover - the pattern accepts any string
        raise SelectorError(f"{raw!r} is not a dbt selector.")
    parts = match.groupdict()
    if parts["childrens_parents"] and parts["children"]:
        raise SelectorError(
            f"{raw!r} combines '@' with a trailing '+'; '@' already selects all children and their "
            f"parents. Use '@{parts['value']}' or '{parts['value']}+'."
        )
    value = parts["value"]
    if parts["method"] is None:
        method, arguments = _default_method(value), ()
    else:
        method, *rest = parts["method"].split(".")
        arguments = tuple(rest)
        if method not in _METHODS:
            close = difflib.get_close_matches(method, list(_METHODS), n=1)
            hint = f" Did you mean '{close[0]}:'?" if close else ""
            raise SelectorError(
                f"'{method}:' in {raw!r} is not a selector method.{hint} "
                f"Methods: {', '.join(m + ':' for m in sorted(_METHODS))}."
            )
        if method == "config" and not arguments:
            raise SelectorError(f"{raw!r} names no config key; write it like 'config.materialized:view'.")
    if not value:
        raise SelectorError(f"{raw!r} has no value to select: write a name, or a method and a value.")
    return Criterion(
        raw=raw,
        method=method,
        arguments=arguments,
        value=value,
        parents=bool(parts["parents"]),
        parents_depth=int(parts["parents_depth"]) if parts["parents_depth"] else None,
        children=bool(parts["children"]),
        children_depth=int(parts["children_depth"]) if parts["children_depth"] else None,
        childrens_parents=bool(parts["childrens_parents"]),
    )


def _parse_union(selectors: str | Sequence[str]) -> UnionSpec:
    texts = [selectors] if isinstance(selectors, str) else list(selectors)
    union = []
    for text in texts:
        for spec in text.split():
            parts = spec.split(",")
            if "" in parts:
                raise SelectorError(
                    f"{spec!r} has an empty part around a comma; join selectors with ',' only."
                )
            union.append(tuple(parse_criterion(part) for part in parts))
    return tuple(union)


def parse_selection(
    select: str | Sequence[str] | None = None, exclude: str | Sequence[str] | None = None
) -> SelectionSpec:
    """Parse `--select`/`--exclude` like dbt: spaces make unions, commas intersections.

    No `select` (None) means dbt's default selection: every node, source, exposure, metric and semantic
    model.
    """
    include = _parse_union(DEFAULT_SELECT if select is None else select)
    return SelectionSpec(
        include=include, exclude=_parse_union(exclude or ()), include_is_default=select is None
    )


# --------------------------------------------------------------------------------------------------
# Selector methods: each returns the positions of the members the value matches
# --------------------------------------------------------------------------------------------------

Method = Callable[[ManifestIndex, str, tuple[str, ...]], set[int]]


def _glob(pattern: str) -> Callable[[str], bool]:
    """`fnmatch(name, pattern)` with the pattern compiled once, for loops over every node."""
    match = re.compile(translate(os.path.normcase(pattern))).match
    return lambda name: match(os.path.normcase(name)) is not None


class _FqnPattern:
    """dbt's `is_selected_node` for one selector: a leaf name, a dotted fqn prefix, or a wildcard pattern.

    Dots in fqn segments act as namespace separators, so dbt compares the selector's dotted parts with
    the fqn flattened on dots. Comparing against the fqn joined with dots is the same test, and lets
    the per-selector work happen once instead of once per node.
    """

    def __init__(self, selector: str) -> None:
        self.selector = selector
        parts = selector.split(".")
        self.versioned_tail = "_".join(parts[-2:])
        wild = next((i for i, part in enumerate(parts) if any(w in part for w in _WILDCARDS)), None)
        self.wild = wild is not None
        # Before the first wildcard the parts must match exactly; from it on, by fnmatch.
        self.prefix = ".".join(parts[:wild]) + "." if wild else ""
        self.rest_matches = _glob(".".join(parts[wild:]) if wild is not None else "")
        self.leaf_matches = _glob(selector) if "." not in selector else None

    def matches(self, fqn: Sequence[str], versioned: bool) -> bool:
        if not fqn:
            return False
        selector = self.selector
        if versioned:
            if len(fqn) >= 2 and fqn[-2] == selector:
                return True
            if "_".join(fqn[-2:]) == self.versioned_tail:
                return True
        elif fqn[-1] == selector:
            return True
        joined = ".".join(fqn)
        if not self.wild:
            return joined == selector or joined.startswith(selector + ".")
        if not joined.startswith(self.prefix):
            return False
        if self.rest_matches(joined[len(self.prefix) :]):
            return True
        # A bare wildcard also matches the leaf name, however deeply the node is nested.
        return self.leaf_matches is not None and self.leaf_matches(fqn[-2] if versioned else fqn[-1])


def _by_fqn(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    pattern = _FqnPattern(value)
    found = set()
    for i, fqn in enumerate(index.fqns):
        resource_type = index.resource_types[i]
        if resource_type == "source":
            continue
        versioned = resource_type == "model" and index.versions[i] is not None
        # Unscoped too, so that `folder.model` matches in every package.
        if pattern.matches(fqn, versioned) or pattern.matches(fqn[1:], versioned):
            found.add(i)
    return found


def _by_tag(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    return {i for i, tags in enumerate(index.tags) if any(fnmatch(tag, value) for tag in tags)}


def _by_group(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    return {
        i
        for i, group in enumerate(index.groups)
        if group
        and (index.resource_types[i] not in _NOT_PARSED or index.resource_types[i] == "metric")
        and fnmatch(group, value)
    }


def _by_access(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    return {
        i for i, access in enumerate(index.accesses) if access == value and index.resource_types[i] == "model"
    }


def _qualified(value: str, method: str, most: int, shape: str) -> list[str]:
    parts = value.split(".")
    if len(parts) > most:
        raise SelectorError(f"'{method}:{value}' has too many dots; write it as {shape}.")
    return parts


def _by_source(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    shape = "'source:source_name', 'source:source_name.table' or 'source:package.source_name.table'"
    parts = _qualified(value, "source", 3, shape)
    # One part names a source, two a source's table, three add the package; the rest is any.
    package, source, table = {1: ["*", *parts, "*"], 2: ["*", *parts], 3: parts}[len(parts)]
    return {
        i
        for i, resource_type in enumerate(index.resource_types)
        if resource_type == "source"
        and fnmatch(index.packages[i], package)
        and fnmatch(index.source_names[i] or "", source)
        and fnmatch(index.names[i], table)
    }


def _by_resource_name(resource_type: str) -> Method:
    """`exposure:`, `metric:`, `semantic_model:`, `saved_query:`, `unit_test:` take `[package.]name`."""

    def search(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
        parts = _qualified(
            value, resource_type, 2, f"'{resource_type}:name' or '{resource_type}:package.name'"
        )
        package, name = ["*", *parts] if len(parts) == 1 else parts
        return {
            i
            for i, rt in enumerate(index.resource_types)
            if rt == resource_type and fnmatch(index.packages[i], package) and fnmatch(index.names[i], name)
        }

    return search


def _path_matches(pattern: Sequence[str], path: Sequence[str], is_dir: bool) -> bool:
    """pathlib-glob semantics for one relative path: `*` within a component, `**` across directories."""
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        if not rest:  # a trailing `**` yields directories only
            return is_dir
        return any(_path_matches(rest, path[i:], is_dir) for i in range(len(path) + 1))
    return bool(path) and fnmatch(path[0], head) and _path_matches(rest, path[1:], is_dir)


def _path_parts(path: str) -> list[str]:
    return [part for part in path.replace("\\", "/").split("/") if part not in ("", ".")]


def _by_path(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    # dbt globs the pattern on disk under the project root and keeps nodes whose file, properties
    # file or any parent directory was found. The manifest lists every such file, so matching the
    # pattern against those paths gives the same answer without a checkout of the project.
    if PurePosixPath(value).is_absolute():
        raise SelectorError(f"'path:{value}' is absolute; write the path relative to the dbt project root.")
    dirs_only = value.endswith("/")
    pattern = _path_parts(value)
    within: dict[str, bool] = {"": False}  # directory -> it or one of its parents matches

    def in_matched_dir(directory: str) -> bool:
        if directory not in within:
            parent = directory.rpartition("/")[0]
            within[directory] = in_matched_dir(parent) or _path_matches(pattern, _path_parts(directory), True)
        return within[directory]

    files: dict[str | None, bool] = {None: False}  # many sources share one properties file

    def file_matches(path: str | None) -> bool:
        if path not in files:
            files[path] = not dirs_only and _path_matches(pattern, _path_parts(path or ""), False)
        return files[path]

    found = set()
    for i, path in enumerate(index.paths):
        patch = index.patch_paths[i]
        patch_file = patch.split("://", 1)[1] if patch and "://" in patch else None
        if (
            in_matched_dir(path.replace("\\", "/").rpartition("/")[0])
            or file_matches(path)
            or file_matches(patch_file)
        ):
            found.add(i)
    return found


def _by_file(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    found = set()
    for i, path in enumerate(index.paths):
        name = PurePosixPath(path)
        if fnmatch(name.name, value) or fnmatch(name.stem, value):
            found.add(i)
    return found


def _by_package(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    if value == "this" and index.project_name:
        value = index.project_name
    return {i for i, package in enumerate(index.packages) if fnmatch(package, value)}


def _config_value_matches(selector: str, value: Any, case_insensitive: bool) -> bool:
    def equal(candidate: Any) -> bool:
        if isinstance(candidate, bool):
            return selector.lower() == str(candidate).lower()
        if case_insensitive and isinstance(candidate, str):
            return selector.upper() == candidate.upper()
        return bool(selector == candidate)

    if isinstance(value, list):
        return any(equal(v) for v in value)
    return equal(value)


def _by_config(index: ManifestIndex, value: str, arguments: tuple[str, ...]) -> set[int]:
    found = set()
    configs = index.configs
    for i, resource_type in enumerate(index.resource_types):
        if resource_type in _NOT_PARSED and resource_type != "source":
            continue
        current: Any = configs[i]
        for key in arguments:
            if not isinstance(current, dict) or key not in current:
                break
            current = current[key]
        else:
            # dbt compares test severity case-insensitively ("warn" matches "WARN").
            if _config_value_matches(value, current, arguments == ("severity",)):
                found.add(i)
    return found


def _by_test_name(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    return {i for i, name in enumerate(index.test_names) if name is not None and fnmatch(name, value)}


def _by_test_type(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    kinds = {"generic": {"generic"}, "schema": {"generic"}, "singular": {"singular"}, "data": {"generic", "singular"},
             "unit": {"unit"}}.get(value)  # fmt: skip
    if kinds is None:
        raise SelectorError(f"'test_type:{value}' is not a test type; use generic, singular, unit or data.")
    found = set()
    for i, resource_type in enumerate(index.resource_types):
        if resource_type == "unit_test":
            kind = "unit"
        elif resource_type == "test":
            kind = "generic" if index.test_names[i] is not None else "singular"
        else:
            continue
        if kind in kinds:
            found.add(i)
    return found


def _by_resource_type(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    if value not in RESOURCE_TYPES:
        raise SelectorError(
            f"'resource_type:{value}' is not a dbt resource type; use one of {', '.join(sorted(LISTED_TYPES))}."
        )
    return {i for i, resource_type in enumerate(index.resource_types) if resource_type == value}


def _version_order(version: Any) -> tuple[int, float, str]:
    # dbt compares versions as numbers when both parse as numbers, else as strings.
    try:
        return (0, float(version), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(version))


def _by_version(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "latest": lambda v, latest: v is not None and v == latest,
        "prerelease": lambda v, latest: bool(v and latest) and _version_order(v) > _version_order(latest),
        "old": lambda v, latest: bool(v and latest) and _version_order(v) < _version_order(latest),
        "none": lambda v, latest: v is None,
    }
    if value not in tests:
        raise SelectorError(
            f"'version:{value}' is not a version selector; use latest, prerelease, old or none."
        )
    test = tests[value]
    return {
        i
        for i, resource_type in enumerate(index.resource_types)
        if resource_type == "model" and test(index.versions[i], index.latest_versions[i])
    }


def _needs_state(method: str) -> Method:
    def search(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
        raise SelectorError(
            f"'{method}:{value}' compares with the artifacts of a previous run (dbt's --state), which the "
            f"portal does not keep; run it with `dbt ls --select {method}:{value} --state <dir>`."
        )

    return search


_METHODS: dict[str, Method] = {
    "fqn": _by_fqn,
    "tag": _by_tag,
    "group": _by_group,
    "access": _by_access,
    "source": _by_source,
    "path": _by_path,
    "file": _by_file,
    "package": _by_package,
    "config": _by_config,
    "test_name": _by_test_name,
    "test_type": _by_test_type,
    "resource_type": _by_resource_type,
    "exposure": _by_resource_name("exposure"),
    "metric": _by_resource_name("metric"),
    "semantic_model": _by_resource_name("semantic_model"),
    "saved_query": _by_resource_name("saved_query"),
    "unit_test": _by_resource_name("unit_test"),
    "version": _by_version,
    "state": _needs_state("state"),
    "result": _needs_state("result"),
    "source_status": _needs_state("source_status"),
}


# --------------------------------------------------------------------------------------------------
# Graph operators and set algebra
# --------------------------------------------------------------------------------------------------


def _walk(start: Iterable[int], edges: list[tuple[int, ...]], depth: int | None) -> set[int]:
    """Nodes reachable from `start` in 1..depth steps along `edges` (breadth-first, like dbt)."""
    seen: set[int] = set()
    frontier = set(start)
    steps = 0
    while frontier and (depth is None or steps < depth):
        following = {n for node in frontier for n in edges[node] if n not in seen}
        seen |= following
        frontier = following
        steps += 1
    return seen


def _criterion_nodes(index: ManifestIndex, criterion: Criterion, with_tests: bool) -> set[int]:
    found = _METHODS[criterion.method](index, criterion.value, criterion.arguments)
    selected = set(found)
    if criterion.childrens_parents:
        descendants = _walk(found, index.children, None) | found
        selected |= descendants | _walk(descendants, index.parents, None)
    if criterion.parents:
        selected |= _walk(found, index.parents, criterion.parents_depth)
    if criterion.children:
        selected |= _walk(found, index.children, criterion.children_depth)
    if with_tests:
        # Eager indirect selection: a test joins when any of its parents is selected.
        types = index.resource_types
        selected |= {c for n in selected for c in index.children[n] if types[c] in TEST_TYPES}
    return selected


@dataclass(frozen=True)
class Selection:
    """What a selection chose, sorted like `dbt ls`, and warnings about parts that matched nothing."""

    unique_ids: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def __iter__(self) -> Iterator[str]:
        return iter(self.unique_ids)

    def __len__(self) -> int:
        return len(self.unique_ids)


def _union_nodes(
    index: ManifestIndex, union: UnionSpec, with_tests: bool, warnings: list[str] | None
) -> set[int]:
    result: set[int] = set()
    for intersection in union:
        sets = [_criterion_nodes(index, criterion, with_tests) for criterion in intersection]
        hit = set.intersection(*sets)
        if not hit and warnings is not None:
            raw = ",".join(c.raw for c in intersection)
            close = [s for c in intersection if c.method == "fqn" for s in index.suggest(c.value)]
            hint = f" Did you mean {', '.join(dict.fromkeys(close))}?" if close else ""
            warnings.append(f"The selection criterion {raw!r} does not match any enabled node.{hint}")
        result |= hit
    return result


def select(
    index: ManifestIndex,
    select: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    *,
    with_tests: bool = False,
) -> Selection:
    """The nodes `dbt ls --select SELECT --exclude EXCLUDE` lists, tests only `with_tests`.

    Raises SelectorError naming the bad part when a selector is not valid.
    """
    spec = parse_selection(select, exclude)
    warnings: list[str] = []
    chosen = _union_nodes(index, spec.include, with_tests, None if spec.include_is_default else warnings)
    if spec.exclude:
        chosen -= _union_nodes(index, spec.exclude, with_tests, warnings)
    listed = LISTED_TYPES if with_tests else LISTED_TYPES - TEST_TYPES
    types = index.resource_types
    unique_ids = sorted(index.unique_ids[i] for i in chosen if types[i] in listed)
    return Selection(unique_ids=tuple(unique_ids), warnings=tuple(warnings))


# --------------------------------------------------------------------------------------------------
# The UI graph
# --------------------------------------------------------------------------------------------------

# Resource types drawn as graph nodes. Tests are attributes of what they test; analyses and hooks
# are not part of a product's lineage.
GRAPH_TYPES = LISTED_TYPES - TEST_TYPES


def _data_products_path(configured: str | None) -> str:
    if configured is None:
        from portal.settings import Settings

        configured = Settings.from_env().data_products_path
    return configured.strip("/") + "/"


def _owner(meta: dict[str, Any], group_owner: str | None, entry: dict[str, Any]) -> str | None:
    owner = meta.get("owner") or group_owner or entry.get("owner")
    if isinstance(owner, dict):  # exposures and groups: {name, email}
        owner = owner.get("name") or owner.get("email")
    return str(owner) if owner else None


def _consumers(meta: dict[str, Any]) -> list[str]:
    consumers = meta.get("consumers") or []
    if isinstance(consumers, str):
        return [consumers]
    return [str(c.get("name", c)) if isinstance(c, dict) else str(c) for c in consumers]


def _node_attributes(
    entry: dict[str, Any], tags: tuple[str, ...], products_path: str, group_owners: dict[str, str | None]
) -> dict[str, Any]:
    config = entry.get("config") or {}
    meta = {**(entry.get("meta") or {}), **(config.get("meta") or {})}
    resource_type = entry.get("resource_type", "")
    path = entry.get("original_file_path") or ""
    fqn = entry.get("fqn") or []
    group = config.get("group") or entry.get("group")
    product_type = meta.get("data_product_type")
    is_product = resource_type == "model" and (bool(product_type) or path.startswith(products_path))
    name = entry.get("name", "")
    source_name = entry.get("source_name")
    return {
        "resource_type": resource_type,
        "name": name,
        "label": f"{source_name}.{name}" if source_name else name,
        "package": entry.get("package_name", ""),
        "path": path,
        "folder": path.rpartition("/")[0],
        # The first folder under models/ (staging, marts, ...); other resources are their own layer.
        "layer": fqn[1] if resource_type in {"model", "seed", "snapshot"} and len(fqn) > 2 else resource_type,
        "owner": _owner(meta, group_owners.get(group) if group else None, entry),
        "consumers": _consumers(meta),
        "group": group,
        "access": entry.get("access"),
        "is_data_product": is_product,
        "data_product_type": product_type,
        "materialized": config.get("materialized"),
        "description": entry.get("description") or "",
        "tags": list(tags),
        "relation": entry.get("relation_name"),
        "status": None,  # filled from run results by apply_run_results
        "tests": [],
    }


def build_graph(
    manifest: Manifest | dict[str, Any],
    index: ManifestIndex | None = None,
    *,
    data_products_path: str | None = None,
    with_tests: bool = False,
) -> nx.DiGraph:
    """The lineage DiGraph: an edge runs from each parent to what depends on it.

    Each node's attributes: resource_type, name, label, package, path, folder, layer, owner,
    consumers, group, access, is_data_product, data_product_type, materialized, description, tags,
    relation, status (None until `apply_run_results`) and tests (one dict per test of the node:
    unique_id, name, column, status). `with_tests` also adds tests as nodes. `manifest` is a loaded
    Manifest or the parsed manifest.json itself.
    """
    import networkx as nx

    raw = manifest if isinstance(manifest, dict) else manifest.raw
    index = index or ManifestIndex.from_raw(raw)
    products_path = _data_products_path(data_products_path)
    group_owners = {
        g.get("name", ""): _owner({}, None, g)
        for g in (raw.get("groups") or {}).values()
        if isinstance(g, dict)
    }
    drawn = GRAPH_TYPES | TEST_TYPES if with_tests else GRAPH_TYPES
    graph: nx.DiGraph = nx.DiGraph(project_name=index.project_name, adapter_type=index.adapter_type)
    with gc_paused():
        types = index.resource_types
        keep = [i for i, t in enumerate(types) if t in drawn]
        entries = _entries_by_id(raw)
        ids = index.unique_ids
        graph.add_nodes_from(
            (ids[i], _node_attributes(entries[ids[i]], index.tags[i], products_path, group_owners))
            for i in keep
        )
        graph.add_edges_from((ids[p], ids[i]) for i in keep for p in index.parents[i] if types[p] in drawn)
        _attach_tests(graph, index, entries)
    return graph


def _entries_by_id(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = {}
    for section in _SECTIONS:
        entries.update(raw.get(section) or {})
    return entries


def _attach_tests(graph: nx.DiGraph, index: ManifestIndex, entries: dict[str, dict[str, Any]]) -> None:
    for i, resource_type in enumerate(index.resource_types):
        if resource_type not in TEST_TYPES:
            continue
        unique_id = index.unique_ids[i]
        entry = entries[unique_id]
        attached = entry.get("attached_node")
        # A relationships test hangs on the model it is declared on, not on the model it refers to.
        targets = [attached] if attached in graph else [index.unique_ids[p] for p in index.parents[i]]
        summary = {
            "unique_id": unique_id,
            "name": index.test_names[i] or index.names[i],
            "column": entry.get("column_name"),
            "status": None,
        }
        for target in targets:
            if target in graph:
                graph.nodes[target]["tests"].append(summary)


def apply_run_results(graph: nx.DiGraph, run_results: RunResults) -> None:
    """Fill each node's `status` and its tests' statuses from the latest run, and count failing tests."""
    status = {result.unique_id: result.status for result in run_results.results}
    for unique_id, data in graph.nodes(data=True):
        data["status"] = status.get(unique_id, data.get("status"))
        for test in data["tests"]:
            test["status"] = status.get(test["unique_id"], test["status"])
        data["failing_tests"] = sum(1 for t in data["tests"] if t["status"] in {"fail", "error"})


def neighbourhood(graph: nx.DiGraph, unique_id: str, up: int | None = 1, down: int | None = 1) -> set[str]:
    """A node (unique id or name) and the nodes within `up` steps upstream and `down` downstream (None: all)."""
    start = require_node(graph, unique_id)
    found = {start}
    for step, depth in ((graph.predecessors, up), (graph.successors, down)):
        frontier, seen, steps = {start}, {start}, 0
        while frontier and (depth is None or steps < depth):
            frontier = {n for node in frontier for n in step(node) if n not in seen}
            seen |= frontier
            steps += 1
        found |= seen
    return found


def find_nodes(graph: nx.DiGraph, text: str) -> list[str]:
    """Nodes whose unique id, name or label is `text`, models and seeds first."""
    if text in graph:
        return [text]
    rank = {"model": 0, "seed": 1, "snapshot": 2, "source": 3}
    hits = [n for n, d in graph.nodes(data=True) if text in (d["name"], d["label"])]
    return sorted(hits, key=lambda n: (rank.get(graph.nodes[n]["resource_type"], 9), n))


def require_node(graph: nx.DiGraph, text: str) -> str:
    """The unique id `text` names in `graph`, or UnknownNodeError with close names."""
    hits = find_nodes(graph, text)
    if hits:
        return hits[0]
    pool = [d["label"] for _, d in graph.nodes(data=True)] + list(graph.nodes)
    raise UnknownNodeError(text, difflib.get_close_matches(text, pool, n=5, cutoff=0.75))


# --------------------------------------------------------------------------------------------------
# Impact analysis
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Impacted:
    """A data product or exposure downstream of a changed node."""

    unique_id: str
    name: str
    kind: str  # "data_product" or "exposure"
    owner: str | None
    consumers: tuple[str, ...]
    path: tuple[str, ...]  # a shortest path from the changed node to this one, both included

    @property
    def distance(self) -> int:
        return len(self.path) - 1


def impact(graph: nx.DiGraph, unique_id: str) -> list[Impacted]:
    """What breaks if `unique_id` changes: downstream data products and exposures, nearest first.

    Consumers are the product's `meta.consumers` plus the exposures that read it directly.
    """
    start = require_node(graph, unique_id)
    came_from: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:  # breadth-first, so the first way found to a node is a shortest one
        node = queue.popleft()
        for child in graph.successors(node):
            if child not in came_from:
                came_from[child] = node
                queue.append(child)
    impacted = []
    for node in came_from:
        data = graph.nodes[node]
        if node == start:
            continue
        if data["resource_type"] == "exposure":
            kind = "exposure"
        elif data["is_data_product"]:
            kind = "data_product"
        else:
            continue
        path = [node]
        while (previous := came_from[path[-1]]) is not None:
            path.append(previous)
        exposures = [graph.nodes[c]["label"] for c in graph.successors(node)
                     if graph.nodes[c]["resource_type"] == "exposure"]  # fmt: skip
        impacted.append(
            Impacted(
                unique_id=node,
                name=data["label"],
                kind=kind,
                owner=data["owner"],
                consumers=tuple(dict.fromkeys([*data["consumers"], *exposures])),
                path=tuple(reversed(path)),
            )
        )
    return sorted(impacted, key=lambda i: (len(i.path), i.name))


# --------------------------------------------------------------------------------------------------
# One manifest's lineage, for the UI
# --------------------------------------------------------------------------------------------------


class Lineage:
    """A manifest's selection index and UI graph, built once and shared by the pages that need them."""

    def __init__(self, manifest: Manifest, *, data_products_path: str | None = None) -> None:
        self.manifest = manifest
        self.index = ManifestIndex.from_manifest(manifest)
        self._data_products_path = data_products_path
        self._graph: nx.DiGraph | None = None

    @property
    def graph(self) -> nx.DiGraph:
        if self._graph is None:
            self._graph = build_graph(self.manifest, self.index, data_products_path=self._data_products_path)
        return self._graph

    def select(
        self, selector: str | Sequence[str] | None, exclude: str | Sequence[str] | None = None
    ) -> Selection:
        """dbt selection without tests, which the graph holds as node attributes."""
        return select(self.index, selector, exclude)

    def subgraph(self, unique_ids: Iterable[str]) -> nx.DiGraph:
        return self.graph.subgraph(u for u in unique_ids if u in self.graph)

    def impact(self, unique_id: str) -> list[Impacted]:
        return impact(self.graph, unique_id)
