"""What ``GET /healthz`` checks: can the store open a transaction (and read in it) in time?

Cheap enough for a load balancer to ask every few seconds, and never stuck: the check runs on
its own thread and the answer waits at most ``timeout`` from the check's start. Requests that
arrive while a check runs share it (two load balancers asking at once, or a flood of callers,
start one check, not one each, and none is told "down" because another is asking). A store
wedged by another process holding its routing lock leaves that one check waiting, and once it
has waited ``timeout`` every later ``/healthz`` reports the store down at once instead of
starting another.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from workflows.store import Store

log = logging.getLogger("leadrelay.health")
PROBE_KEY = "healthz:probe"  # an idempotency key no delivery uses: the read finds nothing


@dataclass
class _Check:
    """One check of the store, shared by every request that arrives while it runs."""

    started: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    failure: list[str] = field(default_factory=list)


class StoreProbe:
    """Asks one store whether it can open a transaction within ``timeout`` seconds."""

    def __init__(self, store: Store, timeout: float = 2.0) -> None:
        self.store = store
        self.timeout = timeout
        self._starting = threading.Lock()  # held only while choosing or starting a check
        self._check: _Check | None = None  # the latest check, running or done

    def problem(self) -> str | None:
        """Why the store is not usable now (for anyone to read: no path, no detail), or None."""
        with self._starting:
            check = self._check
            joined = check is not None and not check.done.is_set()
            if check is None or not joined:
                check = self._check = _Check()
                threading.Thread(
                    target=self._run, args=(check,), name="leadrelay-healthz", daemon=True
                ).start()
        left = check.started + self.timeout - time.monotonic()
        if left <= 0 and not check.done.is_set():
            return f"no transaction within {self.timeout:g} s (an earlier check still waits)"
        if not check.done.wait(max(left, 0.0)):
            if not joined:
                log.warning("health check: no store transaction within %g s", self.timeout)
            return f"no transaction within {self.timeout:g} s"
        return check.failure[0] if check.failure else None

    def _run(self, check: _Check) -> None:
        try:
            with self.store.transaction() as tx:
                tx.seen(PROBE_KEY)
        except Exception as exc:  # the store's own words go to the log, not the answer
            log.warning("health check: the store failed: %s", exc)
            check.failure.append(f"the store failed ({type(exc).__name__}); see the server log")
        finally:
            check.done.set()
