"""The emulator's virtual clock: wall time plus an offset that only ever grows.

Azure's long-running operations take minutes (the recorded sessions in ``shared/azure-recordings``:
an online endpoint PUT 62 s, a deployment 7 min 5 s, a traffic change 1 min 32 s) and GitHub's ID
token lives about 5 minutes; the tests must not wait for either. Every party reads the same clock:

* the emulator stamps operations, token ``iat``/``exp`` and ``Date`` headers with ``now()``;
* ``install()`` points ``time.time`` of the test process at ``now()``, so azure-core's bearer-token
  policy, azure-identity's and MSAL's token caches see tokens age exactly as the server does (a
  client whose clock disagreed with the server's would be a kinder world than Azure's), and points
  azure-core's ``HttpTransport.sleep`` - the one call through which the SDK's LRO pollers
  (``LROBasePolling._sleep`` -> ``self._transport.sleep``) and its retry policy wait - at ``sleep()``;
* the adapter gets ``sleep`` and ``monotonic`` as its ``sleep`` / ``clock`` hooks.

``sleep(d)`` returns with the clock at least ``t0 + d`` (``t0``: when the sleep began). Real seconds
spent computing also pass on it (it is wall time plus the offset). Two ways to get there:

* ``VirtualClock()`` (the tests): at once - the clock jumps to ``max(now, t0 + d)``. Right for one
  thread of work at a time (the adapter waits for each operation); with two threads sleeping side by
  side the second usually starts its sleep after the first has moved the clock, so their waits add up.
* ``VirtualClock(overlap_window=0.05)`` (``benchmarks/azure_timeline.py``, parallel work): a sleeper
  first waits up to ``overlap_window`` real seconds for other threads to start sleeps too, and the
  clock then moves to the *earliest* wake-up among them; each sleeper returns when the clock reaches
  its own. Two pollers of operations running side by side (as in the recorded
  ``online_deployment_update`` session, where operations interleave) then wait 5 virtual seconds
  together, not 10: the clock measures the elapsed time of parallel work. The window must exceed a
  request's real round trip (a poll is ~10-20 ms here); each sleep costs up to that much real time.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import formatdate

_real_time = _time.time
_real_monotonic = _time.monotonic


class VirtualClock:
    def __init__(self, *, overlap_window: float | None = None) -> None:
        self._offset = 0.0
        self._lock = threading.Lock()
        self._moved = threading.Condition(self._lock)
        self._wakeups: list[float] = []
        self.overlap_window = overlap_window
        self.slept = 0.0
        """Virtual seconds the clock was moved forward by ``sleep``/``advance`` (for reports)."""

    # reading --------------------------------------------------------------------------------
    def now(self) -> float:
        """Seconds since the epoch on the virtual clock."""
        return _real_time() + self._offset

    def monotonic(self) -> float:
        return _real_monotonic() + self._offset

    def utcnow(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def iso(self, at: float | None = None) -> str:
        """``2026-12-01T15:20:00.1234567+00:00`` - the ARM timestamp shape (7 fractional digits)."""
        moment = datetime.fromtimestamp(self.now() if at is None else at, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0+00:00"

    def http_date(self) -> str:
        return formatdate(self.now(), usegmt=True)

    # moving ---------------------------------------------------------------------------------
    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` now (a test's "five minutes later")."""
        if seconds < 0:
            raise ValueError("the clock never goes back")
        with self._lock:
            self._offset += seconds
            self.slept += seconds
            self._moved.notify_all()

    def sleep(self, seconds: float) -> None:
        """Return with the clock at least ``seconds`` later than when the sleep began (module docstring)."""
        if seconds <= 0:
            return
        with self._lock:
            target = _real_time() + self._offset + seconds
            if self.overlap_window is None:
                self._move_to(target)
                return
            self._wakeups.append(target)
            try:
                while _real_time() + self._offset < target:
                    if min(self._wakeups) < target:  # someone wakes first: they move the clock
                        self._moved.wait(timeout=self.overlap_window)
                        continue
                    before = len(self._wakeups)
                    self._moved.wait(timeout=self.overlap_window)  # let parallel sleepers join
                    if len(self._wakeups) == before and min(self._wakeups) >= target:
                        self._move_to(target)
            finally:
                self._wakeups.remove(target)
                self._moved.notify_all()

    def _move_to(self, target: float) -> None:
        ahead = target - (_real_time() + self._offset)
        if ahead > 0:
            self._offset += ahead
            self.slept += ahead
            self._moved.notify_all()

    # the test process -----------------------------------------------------------------------
    @contextmanager
    def install(self) -> Iterator[VirtualClock]:
        """Point ``time.time`` and azure-core's transport ``sleep`` at this clock (see the module
        docstring); undone on exit."""
        from azure.core.pipeline.transport import HttpTransport

        clock = self
        saved_time, saved_sleep = _time.time, HttpTransport.sleep

        def transport_sleep(self, duration: float) -> None:  # noqa: ANN001 - HttpTransport.sleep's signature
            clock.sleep(duration)

        _time.time = self.now
        HttpTransport.sleep = transport_sleep  # type: ignore[method-assign]
        try:
            yield self
        finally:
            _time.time = saved_time
            HttpTransport.sleep = saved_sleep  # type: ignore[method-assign]
