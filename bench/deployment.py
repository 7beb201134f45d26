"""The deployment shape of README's "Running several instances", on one machine: N
``leadrelay serve`` instances (gunicorn, 2 workers each) on loopback ports behind nginx
(rendered from docs/deploy/nginx.conf.template), all on one store. Used by bench/load.py and
tests/test_scale_out.py."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import IO

REPO = Path(__file__).resolve().parent.parent
TEMPLATE = REPO / "docs" / "deploy" / "nginx.conf.template"
NGINX_PATHS = ("/usr/sbin/nginx", "/usr/local/sbin/nginx")


class DeploymentError(Exception):
    """Something of the deployment did not start (with the end of its log)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_nginx() -> str | None:
    """Debian's nginx (``make test`` installs it when missing), or None."""
    found = shutil.which("nginx")
    if found:
        return found
    return next((path for path in NGINX_PATHS if os.access(path, os.X_OK)), None)


def render_nginx_config(
    directory: Path, listen_port: int, instance_ports: list[int], *, access_log: bool = False
) -> Path:
    """docs/deploy/nginx.conf.template with this run's ports, written into ``directory``."""
    upstreams = "\n".join(
        f"        server 127.0.0.1:{port} max_fails=1 fail_timeout=5s;" for port in instance_ports
    )
    values = {
        "prefix": str(directory),
        "listen": f"127.0.0.1:{listen_port}",
        "upstreams": upstreams,
        "access_log": str(directory / "access.log") if access_log else "off",
    }
    # safe_substitute: nginx's own $variables ($http_host, ...) stay as they are.
    text = string.Template(TEMPLATE.read_text()).safe_substitute(values)
    if os.geteuid() == 0:
        # As root nginx's workers would run as nobody, who cannot enter this private
        # directory; a bench or test on a developer's machine keeps them as the caller.
        text = "user root;\n" + text
    path = directory / "nginx.conf"
    path.write_text(text)
    return path


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_healthy(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise DeploymentError(f"{base} stopped (exit {process.returncode}):\n{_tail(log)}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise DeploymentError(
                f"{base} did not answer /healthz in {timeout:.0f} s:\n{_tail(log)}"
            )
        time.sleep(0.1)


class Instance:
    """One ``leadrelay serve`` (gunicorn master and workers) in its own process group, its
    output (access log included) in a file: a pipe nobody reads would stall it."""

    def __init__(
        self, name: str, config: Path, env: Mapping[str, str], directory: Path, workers: int = 2
    ) -> None:
        self.name = name
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = directory / f"{name}.log"
        self._config = config
        self._env = dict(env)
        self._workers = workers
        self._log: IO[bytes] | None = None
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> Instance:
        self._log = self.log_path.open("ab")
        command = [
            sys.executable, "-c", "from connector.cli import run; run()",
            "--config", str(self._config), "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self._workers),
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command,
            cwd=REPO,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill() takes the workers too
            env={**self._env, "PYTHONUNBUFFERED": "1"},
        )
        wait_healthy(self.base, self.process, self.log_path, timeout)
        return self

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL to the master and every worker at once, as a machine dying would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):  # workers of a SIGKILLed master
                os.killpg(self.process.pid, signal.SIGKILL)
        if self._log is not None:
            self._log.close()
            self._log = None

    def output(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class Proxy:
    """nginx in the foreground (``daemon off``) with the rendered config."""

    def __init__(
        self, directory: Path, instance_ports: list[int], nginx: str, port: int | None = None
    ) -> None:
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self._directory = directory / "nginx"
        self._directory.mkdir(parents=True, exist_ok=True)
        self.config = render_nginx_config(self._directory, self.port, instance_ports)
        self._nginx = nginx
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 20.0) -> Proxy:
        error_log = self._directory / "error.log"
        test = subprocess.run(
            [self._nginx, "-t", "-q", "-p", str(self._directory), "-c", str(self.config)],
            capture_output=True,
            text=True,
        )
        if test.returncode != 0:
            raise DeploymentError(f"nginx refused {self.config}: {test.stderr.strip()}")
        self.process = subprocess.Popen(
            [self._nginx, "-p", str(self._directory), "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_healthy(self.base, self.process, error_log, timeout)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # nginx: graceful shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
