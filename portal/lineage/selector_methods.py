"""dbt's selector methods (`fqn:`, `tag:`, `path:`, `config.KEY:`, ...) over a `ManifestIndex`, and
`METHODS`, the table of them by name, as in dbt-core's `selector_methods.py`. Each method returns the
positions of the members the value matches."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Sequence
from fnmatch import fnmatch, translate
from pathlib import PurePosixPath
from typing import Any

from portal.lineage.errors import SelectorError
from portal.lineage.index import LISTED_TYPES, ManifestIndex

# Members that do not come from the manifest's `nodes` section: dbt's "parsed node" methods
# (access, group, config, test_name, ...) skip them.
_NOT_PARSED = frozenset(
    {"source", "exposure", "metric", "semantic_model", "saved_query", "unit_test", "function"}
)  # fmt: skip
# Every dbt resource type (dbt's NodeType), for validating `resource_type:` values.
RESOURCE_TYPES = LISTED_TYPES | {
    "analysis", "operation", "rpc", "sql_operation", "doc", "macro", "group", "fixture"
}  # fmt: skip
_WILDCARDS = ("*", "?", "[", "]")

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


def _directories(path: str) -> Iterator[str]:
    """The folders a file lies in, innermost first (`models/a/x.sql` -> `models/a`, `models`)."""
    parts = _path_parts(path)[:-1]
    while parts:
        yield "/".join(parts)
        parts.pop()


def _globbed(index: ManifestIndex, value: str) -> tuple[set[str], set[str]]:
    """The files and folders of the root project that `path:VALUE` globs, as dbt's `root.glob(VALUE)`."""
    if PurePosixPath(value).is_absolute():
        raise SelectorError(f"'path:{value}' is absolute; write the path relative to the dbt project root.")
    pattern = _path_parts(value)
    if not pattern:
        raise SelectorError(
            f"'path:{value}' names the project root itself, which dbt cannot glob; name a folder or "
            "file under it, or leave --select out to select everything."
        )
    known = index.project_files if index.project_files is not None else _member_files(index)
    files = {"/".join(_path_parts(path)) for path in known}
    folders = {folder for path in files for folder in _directories(path)}
    matched_folders = {f for f in folders if _path_matches(pattern, _path_parts(f), True)}
    dirs_only = value.endswith("/")
    matched_files = (
        set() if dirs_only else {f for f in files if _path_matches(pattern, _path_parts(f), False)}
    )
    return matched_files, matched_folders


def _member_files(index: ManifestIndex) -> set[str]:
    patches = (_patch_file(patch) for patch in index.patch_paths)
    return {path for path in (*index.paths, *patches) if path}


def _patch_file(patch: str | None) -> str | None:
    return patch.split("://", 1)[1] if patch and "://" in patch else None


def _by_path(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    # dbt globs the pattern on disk under the root project and keeps every node, of any package, whose
    # file, properties file or one of whose folders it found there; a package's paths are relative to
    # the package, so a folder that only a package has selects nothing. The manifest names the root
    # project's files, so globbing those gives dbt's answer without a checkout of the project.
    matched_files, matched_folders = _globbed(index, value)
    normal = {path: "/".join(_path_parts(path)) for path in index.paths}
    within: dict[str, bool] = {}  # file -> one of its folders was globbed
    found = set()
    for i, path in enumerate(index.paths):
        if path not in within:
            within[path] = any(folder in matched_folders for folder in _directories(path))
        patch = _patch_file(index.patch_paths[i])
        if (
            within[path]
            or normal[path] in matched_files
            or (patch is not None and "/".join(_path_parts(patch)) in matched_files)
        ):
            found.add(i)
    return found


def path_outside_project(index: ManifestIndex, value: str) -> str:
    """Why `path:VALUE` selected nothing when its folder or file lies in an installed package only."""
    if index.project_files is None or not index.project_name:
        return ""
    pattern = _path_parts(value)
    packages: dict[str, tuple[str, ...]] = {}
    for i, path in enumerate(index.paths):
        package = index.packages[i]
        if package == index.project_name or package in packages:
            continue
        folder = next((f for f in _directories(path) if _path_matches(pattern, _path_parts(f), True)), None)
        if folder is not None or _path_matches(pattern, _path_parts(path), False):
            packages[package] = _fqn_of_folder(index.fqns[i], path, folder)
    if not packages:
        return ""
    names = ("package " if len(packages) == 1 else "packages ") + ", ".join(sorted(packages))
    example = next((".".join(fqn) for fqn in packages.values() if fqn), None)
    how = f", e.g. '{example}'" if example else " (package.folder...)"
    return (
        f" '{value}' lies in {names} only, and dbt resolves path: against the root project "
        f"({index.project_name}); select by fqn instead{how}."
    )


def _fqn_of_folder(fqn: tuple[str, ...], path: str, folder: str | None) -> tuple[str, ...]:
    """The fqn prefix naming `folder` (or the node, for no folder), when the node's fqn follows its
    path: the package in place of the resource folder (`models`), then the folders and the name."""
    parts = _path_parts(path)
    if len(fqn) != len(parts) or tuple(parts[1:-1]) != fqn[1:-1]:
        return ()
    return fqn if folder is None else fqn[: len(_path_parts(folder))]


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


def _older(version: Any, other: Any) -> bool:
    # dbt's UnparsedVersion.__lt__: as numbers when both parse as numbers, else both as strings, so
    # 2 comes after "10b" (as text "2" > "10b") however the numbers compare.
    try:
        return float(version) < float(other)
    except (TypeError, ValueError):
        return str(version) < str(other)


def _by_version(index: ManifestIndex, value: str, _: tuple[str, ...]) -> set[int]:
    tests: dict[str, Callable[[Any, Any], bool]] = {
        "latest": lambda v, latest: v is not None and v == latest,
        "prerelease": lambda v, latest: bool(v and latest) and _older(latest, v),
        "old": lambda v, latest: bool(v and latest) and _older(v, latest),
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


METHODS: dict[str, Method] = {
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
