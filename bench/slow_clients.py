"""Slow clients against one instance, straight and through nginx: while 20 connections
trickle their headers a byte at a time, how many /healthz probes (2 s time-out) fail?

gunicorn's threads each hold a connection until its request is complete, so 20 trickling
clients take every thread of an instance with 2 workers x 4 threads; nginx reads requests
whole before passing them on, so behind it the instance never sees them."""

from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml
from deployment import Instance, Proxy, find_nginx, free_port

SLOW_CLIENTS = 20
PROBE_TIMEOUT = 2.0


@dataclass(frozen=True)
class ProbeCount:
    target: str
    probes: int
    timed_out: int

    def describe(self) -> str:
        return f"{self.target}: {self.timed_out} of {self.probes} /healthz probes timed out"


def _trickle(port: int, stop: threading.Event) -> None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            while not stop.wait(0.5):
                sock.sendall(b"X")  # a header that never ends
    except OSError:
        pass  # closed by the server's time-out: that is its defence


def probe(target: str, port: int, seconds: float = 8.0) -> ProbeCount:
    """Probe ``port`` every 0.25 s for ``seconds`` while SLOW_CLIENTS trickle into it."""
    stop = threading.Event()
    slow = [
        threading.Thread(target=_trickle, args=(port, stop), daemon=True)
        for _ in range(SLOW_CLIENTS)
    ]
    for each in slow:
        each.start()
    time.sleep(1.0)  # let them take their threads
    probes = timed_out = 0
    ends = time.monotonic() + seconds
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    while time.monotonic() < ends:
        probes += 1
        try:
            with opener.open(f"http://127.0.0.1:{port}/healthz", timeout=PROBE_TIMEOUT) as answer:
                answer.read()
        except OSError:
            timed_out += 1
        time.sleep(0.25)
    stop.set()
    for each in slow:
        each.join(timeout=5)
    return ProbeCount(target, probes, timed_out)


def probe_with_and_without_proxy(
    directory: Path, seconds: float = 8.0
) -> tuple[ProbeCount, ProbeCount]:
    """Both measurements, on one instance (2 workers x 4 threads) on an embedded store."""
    nginx = find_nginx()
    assert nginx, "nginx is not installed"
    config = directory / "app.yaml"
    config.write_text(yaml.safe_dump({
        "store": f"sqlite:///{directory / 'slow.sqlite'}",
        "reps": [{"id": "ana"}], "fallback": {"rep": "ana"},
    }))  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    instance = Instance("slow", config, env, directory).start()
    proxy = Proxy(directory, [instance.port], nginx, free_port())
    try:
        proxy.start()
        direct = probe("straight to the instance", instance.port, seconds)
        proxied = probe("through nginx", proxy.port, seconds)
    finally:
        proxy.stop()
        instance.stop()
    return direct, proxied


def probe_while_slow(directory: Path) -> str:
    direct, proxied = probe_with_and_without_proxy(directory)
    return f"{SLOW_CLIENTS} slow clients: {direct.describe()}; {proxied.describe()}"
