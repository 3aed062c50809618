"""Requests per second of `GET /api/v1/data-products/{id}/query?limit=100`, next to the bare DuckDB query.

    .venv/bin/python bench/api_query.py [--product dp_customer_360] [--seconds 5] [--clients 1 8]

Starts the API (uvicorn, one process, as `make api` does) on a free loopback port over a private
copy of the configured portal's warehouse and SQLite catalog (PORTAL_* variables; `make demo`
builds the default one), so the run's token and usage events never reach the real catalog. It
authenticates with a viewer token, as a production client would, and for each number of concurrent clients
sends requests for a bounded time. In the same run it times the bare DuckDB work of one such
request (a read-only connection, the 100 rows and the count, as the warehouse layer does) and
prints the API's latency as a multiple of it. Loopback only; the machine is shared, so expect noise.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from portal.auth.access import create_token  # noqa: E402
from portal.service import PortalService  # noqa: E402
from portal.settings import Settings  # noqa: E402
from portal.warehouse.duckdb import LOCKED_CONFIG  # noqa: E402

SERVER = (
    "import sys, uvicorn; from portal.api import create_app; "
    "uvicorn.run(create_app(host='127.0.0.1'), host='127.0.0.1', port=int(sys.argv[1]), log_level='warning')"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def private_copy(settings: Settings, directory: Path) -> dict[str, str]:
    """PORTAL_* variables of a copy of the warehouse and catalog; artifacts are only read, so shared."""
    prefix = "sqlite:///"
    url = settings.resolved_catalog_db_url
    if not url.startswith(prefix):
        raise SystemExit(
            f"The bench copies a SQLite catalog; {url} is not one. Point PORTAL_CATALOG_DB_URL at one."
        )
    shutil.copy2(settings.duckdb_path, directory / "warehouse.duckdb")
    with sqlite3.connect(url.removeprefix(prefix)) as src, sqlite3.connect(directory / "catalog.db") as dst:
        src.backup(dst)  # WAL-safe, unlike copying the file
    return {
        "PORTAL_DUCKDB_PATH": str(directory / "warehouse.duckdb"),
        "PORTAL_CATALOG_DB_URL": prefix + str(directory / "catalog.db"),
        "PORTAL_DBT_TARGET_DIR": str(settings.target_dir),
        "PORTAL_DBT_PROJECT_DIR": str(settings.dbt_project_dir),
    }


def start_server(port: int, environ: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {**os.environ, **environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-c", SERVER, str(port)], cwd=ROOT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code in {200, 503}:
                return process
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the API did not start within 60 s")


def bare_duckdb(settings: Settings, schema: str, table: str, repeats: int) -> list[float]:
    """Seconds per bare query: what one API query asks of DuckDB, without the API around it."""
    select = f'SELECT * FROM "{schema}"."{table}" LIMIT 100'
    count = f'SELECT count(*) FROM "{schema}"."{table}"'
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        con = duckdb.connect(str(settings.duckdb_path), read_only=True, config=dict(LOCKED_CONFIG))
        con.execute(select).fetchall()
        con.execute(count).fetchall()
        con.close()
        times.append(time.perf_counter() - started)
    return times


def load(url: str, headers: dict[str, str], clients: int, seconds: float) -> tuple[int, list[float], int]:
    """Requests done, each one's latency, and failures, from `clients` threads for `seconds`."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client() -> None:
        nonlocal failures
        with httpx.Client(headers=headers, timeout=30) as http:
            while time.monotonic() < stop:
                started = time.perf_counter()
                response = http.get(url)
                elapsed = time.perf_counter() - started
                with lock:
                    if response.status_code == 200:
                        latencies.append(elapsed)
                    else:
                        failures += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return len(latencies), latencies, failures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--product", default="dp_customer_360")
    parser.add_argument("--seconds", type=float, default=5.0, help="load time per concurrency level")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    args = parser.parse_args()

    configured = Settings.from_env()
    if not configured.duckdb_path.exists():
        raise SystemExit(f"No warehouse at {configured.duckdb_path}: run `make demo` first.")
    with tempfile.TemporaryDirectory(prefix="bench-api-") as directory:
        environ = private_copy(configured, Path(directory))
        settings = Settings.from_env({**os.environ, **environ})
        run(settings, environ, args)


def run(settings: Settings, environ: dict[str, str], args: argparse.Namespace) -> None:
    service = PortalService(settings)
    node = service.resolve(args.product)
    token = create_token(service.sessions, "bench", "viewer", created_by="bench/api_query.py")
    port = free_port()
    server = start_server(port, environ)
    try:
        url = f"http://127.0.0.1:{port}/api/v1/data-products/{node.name}/query?limit=100"
        headers = {"Authorization": f"Bearer {token.secret}"}
        load(url, headers, 1, 1.0)  # warm-up: imports, first manifest read, DuckDB file cache
        returned = httpx.get(url, headers=headers, timeout=30).json()["returned_rows"]
        assert returned == 100, f"the API returned {returned} rows, not 100"
        bare = bare_duckdb(settings, node.schema or "main", node.alias or node.name, 200)
        bare_ms = statistics.median(bare) * 1000
        rows = service.warehouse().count(service.relation(node))
        print(f"{node.name} ({rows:,} rows): GET .../query?limit=100, {args.seconds:g} s per level")
        print(f"  bare DuckDB (connect read-only, 100 rows, count): median {bare_ms:.2f} ms")
        for clients in args.clients:
            done, latencies, failures = load(url, headers, clients, args.seconds)
            median_ms = statistics.median(latencies) * 1000
            p95_ms = statistics.quantiles(latencies, n=20)[-1] * 1000 if len(latencies) > 1 else median_ms
            print(
                f"  {clients:>2} client(s): {done / args.seconds:7.1f} req/s, median {median_ms:6.2f} ms "
                f"(x{median_ms / bare_ms:.1f} bare DuckDB), p95 {p95_ms:6.2f} ms, failures {failures}"
            )
    finally:
        server.terminate()
        server.wait(30)


if __name__ == "__main__":
    main()
