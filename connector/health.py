"""What ``GET /healthz`` checks: can the store open a transaction (and read in it) in time?

Cheap enough for a load balancer to ask every few seconds, and never stuck: the check runs on
its own thread and the answer waits at most ``timeout``. A store wedged by another process
holding its routing lock leaves that one check waiting, and until it returns every later
``/healthz`` reports the store down at once instead of starting another.
"""

from __future__ import annotations

import logging
import threading

from workflows.store import Store

log = logging.getLogger("leadrelay.health")
PROBE_KEY = "healthz:probe"  # an idempotency key no delivery uses: the read finds nothing


class StoreProbe:
    """Asks one store whether it can open a transaction within ``timeout`` seconds."""

    def __init__(self, store: Store, timeout: float = 2.0) -> None:
        self.store = store
        self.timeout = timeout
        self._running = threading.Lock()  # held while a check's thread has not returned

    def problem(self) -> str | None:
        """Why the store is not usable now (for anyone to read: no path, no detail), or None."""
        if not self._running.acquire(blocking=False):
            return f"no transaction within {self.timeout:g} s (an earlier check still waits)"
        done = threading.Event()
        failure: list[str] = []

        def check() -> None:
            try:
                with self.store.transaction() as tx:
                    tx.seen(PROBE_KEY)
            except Exception as exc:  # the store's own words go to the log, not the answer
                log.warning("health check: the store failed: %s", exc)
                failure.append(f"the store failed ({type(exc).__name__}); see the server log")
            finally:
                done.set()
                self._running.release()

        threading.Thread(target=check, name="leadrelay-healthz", daemon=True).start()
        if not done.wait(self.timeout):
            log.warning("health check: no store transaction within %g s", self.timeout)
            return f"no transaction within {self.timeout:g} s"
        return failure[0] if failure else None
