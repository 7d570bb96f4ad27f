"""The emulator's virtual clock: sleeps take no real time; parallel sleeps overlap when asked to."""

from __future__ import annotations

import threading
import time

import pytest

from tests.azure_emulator.clock import VirtualClock


def _two_pollers(clock: VirtualClock, polls: int, interval: float) -> float:
    start = clock.now()

    def poller() -> None:
        for _ in range(polls):
            time.sleep(0.002)  # the poll's real round trip
            clock.sleep(interval)

    threads = [threading.Thread(target=poller) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return clock.now() - start


def test_a_sleep_takes_no_real_time_and_moves_the_clock() -> None:
    clock = VirtualClock()
    real, virtual = time.monotonic(), clock.now()
    for _ in range(100):
        clock.sleep(5)
    assert clock.now() - virtual >= 500 and time.monotonic() - real < 1


def test_parallel_sleeps_overlap_with_a_window() -> None:
    elapsed = _two_pollers(VirtualClock(overlap_window=0.05), polls=10, interval=5)
    assert 50 <= elapsed < 70, f"two pollers of 10 x 5 s side by side took {elapsed:.0f} virtual s"


def test_without_a_window_parallel_sleeps_can_add_up() -> None:
    elapsed = _two_pollers(VirtualClock(), polls=10, interval=5)
    assert elapsed >= 50  # at least the longest thread's waits; up to both threads' waits summed


def test_the_clock_never_goes_back() -> None:
    with pytest.raises(ValueError):
        VirtualClock().advance(-1)


def test_install_points_time_time_and_the_sdks_transport_sleep_at_the_clock() -> None:
    from azure.core.pipeline.transport import RequestsTransport

    clock = VirtualClock()
    with clock.install():
        before = time.time()
        RequestsTransport().sleep(300)  # what an LRO poller and the retry policy call
        assert time.time() - before >= 300
    assert abs(time.time() - before) < 60, "uninstalled: wall time again"
