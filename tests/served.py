"""A real ``leadrelay serve`` (gunicorn) in a subprocess, for tests that need one."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """The running server: its port, and once it has stopped, everything it printed."""

    port: int
    output: str = field(default="")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@contextmanager
def serving(
    config: Path, env: Mapping[str, str], *, workers: int = 1, port: int | None = None
) -> Iterator[Served]:
    """Serve ``config`` until the block ends (then SIGTERM); yields once /healthz answers."""
    served = Served(port or free_port())
    cli = Path(sys.executable).with_name("leadrelay")
    # The server writes into a file, not a pipe: nobody reads a pipe until the server stops,
    # and once its ~64 KB buffer is full (an access log line per request) every worker blocks
    # on its next log line and requests time out. Opened for appending, so reading it never
    # moves where the server writes.
    with tempfile.TemporaryDirectory(prefix="leadrelay-served-") as folder:
        printed = Path(folder) / "output.log"
        with printed.open("ab") as sink:
            server = subprocess.Popen(
                [str(cli), "--config", str(config), "serve", "--port", str(served.port),
                 "--workers", str(workers)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**env, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(f"{served.base}/healthz", timeout=2):
                        break
                except OSError:
                    assert server.poll() is None, _text(printed)
                    assert time.monotonic() < deadline, "leadrelay serve did not answer"
                    time.sleep(0.1)
            yield served
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            finally:
                served.output = _text(printed)


def _text(printed: Path) -> str:
    return printed.read_bytes().decode(errors="replace")
