"""A bounded wait for a lock: taken as soon as the holder lets go, else LockBusy naming the holder
(project/locks.py; across hosts, with PostgreSQL's advisory layer: tests/integration/test_two_portals.py)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from portal.project.locks import LockBusy, PortalLock
from portal.settings import Settings


def _lock(tmp_path: Path) -> PortalLock:
    return PortalLock(Settings.from_env({}), "wait-test", file_key=str(tmp_path))


def _held_for(lock: PortalLock, seconds: float) -> threading.Event:
    """Hold `lock` in another thread for `seconds`; the event is set once it is held."""
    held = threading.Event()

    def hold() -> None:
        with lock.hold(wait=False):
            held.set()
            time.sleep(seconds)

    threading.Thread(target=hold, daemon=True).start()
    assert held.wait(5)
    return held


def test_a_bounded_wait_gives_up_after_its_seconds_and_says_who_holds_it(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    _held_for(lock, 3)
    told: list[str] = []
    began = time.monotonic()
    with pytest.raises(LockBusy) as busy, _lock(tmp_path).hold(wait=0.6, on_wait=told.append):
        pass
    waited = time.monotonic() - began
    assert 0.5 <= waited < 2.5, waited
    assert "pid" in busy.value.holder and told == [busy.value.holder]  # told once, before waiting


def test_a_bounded_wait_takes_the_lock_once_the_holder_lets_go(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    _held_for(lock, 1)
    began = time.monotonic()
    with _lock(tmp_path).hold(wait=20):
        waited = time.monotonic() - began
    assert 0.5 <= waited < 10, waited  # after the holder, long before the bound


def test_no_wait_is_refused_at_once_and_a_free_lock_is_taken_at_once(tmp_path: Path) -> None:
    lock = _lock(tmp_path)
    with lock.hold(wait=0.0):
        for wait in (False, 0.0):
            began = time.monotonic()
            with pytest.raises(LockBusy), _lock(tmp_path).hold(wait=wait):
                pass
            assert time.monotonic() - began < 0.5
