"""Ctrl-C and SIGTERM as a request to stop at the next safe point, not in the middle of a write.

A KeyboardInterrupt raised while a CRM write is on the wire leaves leads moved in the CRM but
never printed, recorded as written or announced. Inside ``DeferredStop`` the first SIGINT or
SIGTERM is only noted (``requested``); the command finishes what is in flight and stops. A
second one stops at once, as a person pressing Ctrl-C again expects.
"""

from __future__ import annotations

import os
import signal
import threading
from types import FrameType, TracebackType

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class DeferredStop:
    """Within ``with``: the first SIGINT/SIGTERM sets ``requested``; the second raises
    KeyboardInterrupt. Outside the main thread signals cannot be caught: nothing changes."""

    def __init__(self, notice: str) -> None:
        self.notice = notice
        self.signal: signal.Signals | None = None
        self._previous: dict[signal.Signals, object] = {}

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def exit_status(self) -> int:
        """The shell's status for a process a signal stopped (130 for SIGINT, 143 for TERM)."""
        return 128 + int(self.signal or 0)

    def __enter__(self) -> DeferredStop:
        if threading.current_thread() is threading.main_thread():
            for number in SIGNALS:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for number, handler in self._previous.items():
            # None: a handler installed outside Python, which cannot be put back; the default.
            signal.signal(number, signal.SIG_DFL if handler is None else handler)  # type: ignore[arg-type]
        self._previous.clear()

    def _handle(self, number: int, frame: FrameType | None) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signal.Signals(number)
        # os.write, not click.echo: the handler may run inside another write to stderr, and
        # Python's buffered streams refuse a reentrant call.
        os.write(2, f"\n{self.signal.name}: {self.notice}\n".encode())
