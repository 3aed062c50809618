"""Readers of a DuckDB warehouse keep being served while a build writes it: real files, a real
writer in another process (as dbt is), a real kill -9 of a builder."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from portal.settings import ROOT, Settings
from portal.warehouse import WarehouseUnavailable
from portal.warehouse.duckdb import DuckDBWarehouse
from portal.warehouse.snapshot import readers_served, reading_copy, reading_copy_path

COUNT = "select count(*) as n from gold.t"


@pytest.fixture
def warehouse_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("create schema gold")
        con.execute("create table gold.t as select 1 as x")
    return path


def _settings(path: Path, **extra: str) -> Settings:
    return Settings.from_env({"PORTAL_DUCKDB_PATH": str(path), "PORTAL_QUERY_TIMEOUT_S": "5", **extra})


def _count(path: Path) -> int:
    return int(DuckDBWarehouse(path, timeout_s=5, max_rows=10).query(COUNT)["n"][0])


@pytest.fixture
def writer(warehouse_file: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that opens the warehouse for writing (as dbt does) once it reads a line: it adds
    a row, says `written`, and keeps the file open until it reads another line."""
    script = textwrap.dedent(
        f"""
        import sys, duckdb
        sys.stdin.readline()
        con = duckdb.connect({str(warehouse_file)!r})
        con.execute("insert into gold.t values (2)")
        print("written", flush=True)
        sys.stdin.readline()
        con.close()
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)


def _write_and_hold(writer: subprocess.Popen[str]) -> None:
    assert writer.stdin is not None and writer.stdout is not None
    writer.stdin.write("go\n")
    writer.stdin.flush()
    assert writer.stdout.readline().strip() == "written"


def _release(writer: subprocess.Popen[str]) -> None:
    assert writer.stdin is not None
    writer.stdin.write("done\n")
    writer.stdin.flush()
    assert writer.wait(30) == 0


def test_without_a_copy_a_writer_shuts_readers_out(
    warehouse_file: Path, writer: subprocess.Popen[str]
) -> None:
    """What every preview met during a build before: the reason for the copy."""
    _write_and_hold(writer)
    with pytest.raises(WarehouseUnavailable, match="busy"):
        _count(warehouse_file)
    _release(writer)


def test_readers_read_the_version_before_the_build_while_it_writes(
    warehouse_file: Path, writer: subprocess.Popen[str]
) -> None:
    with readers_served(_settings(warehouse_file)):
        assert reading_copy(warehouse_file) == reading_copy_path(warehouse_file)
        _write_and_hold(writer)
        assert _count(warehouse_file) == 1  # the version before the build, not a 503
        assert (
            "copy from before the build" in DuckDBWarehouse(warehouse_file, timeout_s=5, max_rows=1).status()
        )
        _release(writer)
    assert not reading_copy_path(warehouse_file).exists()
    assert _count(warehouse_file) == 2  # once the build is over, what it wrote


def test_the_builder_waits_for_a_reader_that_opened_the_file_first(warehouse_file: Path) -> None:
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time, duckdb\n"
            f"con = duckdb.connect({str(warehouse_file)!r}, read_only=True)\n"
            "print('open', flush=True)\n"
            "time.sleep(1.5)\n"
            "con.close()\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
    # Had the builder not waited (the copy takes milliseconds, the reader holds the file 1.5 s),
    # this open for writing, as dbt's, would fail on the reader's lock.
    with readers_served(_settings(warehouse_file)), duckdb.connect(str(warehouse_file)) as con:
        con.execute("insert into gold.t values (3)")
    reader.wait(30)


def test_a_copy_left_by_a_builder_that_died_is_never_served(warehouse_file: Path) -> None:
    builder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            f"sys.path.insert(0, {str(ROOT)!r})\n"
            "from portal.settings import Settings\n"
            "from portal.warehouse.snapshot import readers_served\n"
            f"settings = Settings.from_env({{'PORTAL_DUCKDB_PATH': {str(warehouse_file)!r}}})\n"
            "with readers_served(settings):\n"
            "    print('holding', flush=True)\n"
            "    time.sleep(600)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert builder.stdout is not None and builder.stdout.readline().strip() == "holding"
    assert reading_copy(warehouse_file) is not None
    builder.send_signal(signal.SIGKILL)
    builder.wait(10)
    assert reading_copy_path(warehouse_file).exists()  # left behind
    assert reading_copy(warehouse_file) is None  # but its builder is gone: the file itself is read
    with duckdb.connect(str(warehouse_file)) as con:
        con.execute("insert into gold.t values (2)")
    assert _count(warehouse_file) == 2
    with readers_served(_settings(warehouse_file)):  # the next build replaces it
        assert _count(warehouse_file) == 2
    assert not reading_copy_path(warehouse_file).exists()


def test_a_file_above_the_limit_is_not_copied(warehouse_file: Path) -> None:
    with readers_served(_settings(warehouse_file, PORTAL_DUCKDB_READ_COPY_MAX_MB="0")):
        assert reading_copy(warehouse_file) is None
        assert not reading_copy_path(warehouse_file).exists()
