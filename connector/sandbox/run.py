"""One sandbox run: private files, the two stand-ins, and a real ``leadrelay serve`` pointed at
them through its environment. A context manager: leaving it stops everything and removes
the files, however it is left (Ctrl-C included)."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

import requests

from adapters.hubspot.contact import ACCESS_TOKEN_ENV, API_BASE_ENV, CLIENT_SECRET_ENV
from adapters.hubspot.links import APP_BASE_ENV
from adapters.salesforce.links import INSTANCE_URL_ENV
from connector.ops_auth import OPS_TOKEN_ENV
from connector.salesforce_outbound import TOKEN_ENV as OUTBOUND_TOKEN_ENV
from connector.sandbox import SANDBOX_ENV
from connector.sandbox.hubspot_standin import HubSpotStandIn, owner
from connector.sandbox.loopback import LoopbackServer
from connector.sandbox.salesforce_standin import SalesforceStandIn, user
from connector.sandbox.team import ORG_ID, PORTAL_ID, TEAM, demo_config, write_demo_config
from connector.sandbox.tls import server_context, write_ca_bundle, write_identity

SALESFORCE_TOKEN_ENV = "SALESFORCE_ACCESS_TOKEN"  # adapters.salesforce.auth: the direct mode
# Variables of the caller's own deployment the sandboxed server must not see: real CRM
# credentials, another store or config, another CA bundle, the real server's metrics
# directory (serve empties it at start: the live server's counters would be lost).
_NOT_PASSED = ("HUBSPOT_", "SALESFORCE_", "LEADRELAY_")
_NOT_PASSED_EXACT = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PORT", "PROMETHEUS_MULTIPROC_DIR")


class SandboxError(Exception):
    """The sandbox could not start (a busy port, a server that did not come up)."""


@dataclass(frozen=True)
class Secrets:
    """Made for one run, given to the server through its environment, gone with it."""

    hubspot_client_secret: str
    hubspot_token: str
    salesforce_token: str
    ops_token: str
    outbound_token: str

    @classmethod
    def generate(cls) -> Secrets:
        return cls(
            secrets.token_hex(16),
            f"pat-sandbox-{secrets.token_hex(12)}",
            f"{ORG_ID[:15]}!sandbox{secrets.token_urlsafe(24)}",
            secrets.token_urlsafe(24),
            secrets.token_urlsafe(16),
        )


def server_env(
    env: Mapping[str, str],
    hubspot_url: str,
    salesforce_url: str,
    secrets: Secrets,
    bundle: Path,
) -> dict[str, str]:
    """The sandboxed server's environment: the caller's, less anything of a real deployment,
    plus the stand-ins' addresses (API and record pages), this run's secrets and the flag
    that labels the server a sandbox."""
    kept = {
        name: value
        for name, value in env.items()
        if not name.startswith(_NOT_PASSED) and name not in _NOT_PASSED_EXACT
    }
    # The stand-ins are on loopback: a proxy from the environment must not carry them.
    no_proxy = ",".join(
        filter(None, [kept.get("NO_PROXY") or kept.get("no_proxy"), "127.0.0.1", "localhost"])
    )
    return {
        **kept,
        API_BASE_ENV: hubspot_url,
        APP_BASE_ENV: hubspot_url,
        CLIENT_SECRET_ENV: secrets.hubspot_client_secret,
        ACCESS_TOKEN_ENV: secrets.hubspot_token,
        INSTANCE_URL_ENV: salesforce_url,
        SALESFORCE_TOKEN_ENV: secrets.salesforce_token,
        OPS_TOKEN_ENV: secrets.ops_token,
        OUTBOUND_TOKEN_ENV: secrets.outbound_token,
        SANDBOX_ENV: "1",
        "REQUESTS_CA_BUNDLE": str(bundle),
        "NO_PROXY": no_proxy,
        "no_proxy": no_proxy,
        "PYTHONUNBUFFERED": "1",
    }


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Sandbox:
    """The running sandbox; ``base`` is the server's URL."""

    def __init__(self, port: int, first_touch: timedelta, workers: int = 2) -> None:
        self.port = port
        self.first_touch = first_touch
        self.workers = workers
        self.base = f"http://127.0.0.1:{port}"
        self.secrets = Secrets.generate()
        self.directory: Path | None = None
        self.config_path = Path()
        self.log_path = Path()
        owners = [
            owner(rep.owner_id, rep.email, rep.name, 9001 + number)
            for number, rep in enumerate(TEAM)
        ]
        self.hubspot = HubSpotStandIn(self.secrets.hubspot_token, owners, PORTAL_ID)
        self.salesforce = SalesforceStandIn(
            self.secrets.salesforce_token, [user(r.user_id, r.name, r.email) for r in TEAM], ORG_ID
        )
        self._servers: list[LoopbackServer] = []
        self._server: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def hubspot_url(self) -> str:
        return self._servers[0].url

    @property
    def salesforce_url(self) -> str:
        return self._servers[1].url

    def __enter__(self) -> Sandbox:
        if not port_is_free(self.port):
            raise SandboxError(f"port {self.port} is in use: pick another with --port (or PORT)")
        self.directory = directory = Path(tempfile.mkdtemp(prefix="leadrelay-demo-"))  # 0700
        try:
            self._start(directory)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.close()

    def _start(self, directory: Path) -> None:
        cert, key = write_identity(directory)
        trusted = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        bundle = write_ca_bundle(directory, cert, trusted)
        self._servers.append(LoopbackServer(self.hubspot.app).start())
        self._servers.append(
            LoopbackServer(self.salesforce.app, tls=server_context(cert, key)).start()
        )
        self.config_path = directory / "app.yaml"
        data = demo_config(datetime.now(UTC), directory / "demo.sqlite", self.first_touch)
        write_demo_config(self.config_path, data)
        self.log_path = directory / "server.log"
        self._log = self.log_path.open("wb")
        command = [
            sys.executable, "-c", "from connector.cli import run; run()",
            "--config", str(self.config_path), "serve", "--host", "127.0.0.1",
            "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        # Its own session: a Ctrl-C in the terminal reaches the demo alone, which then stops
        # the server gracefully and in order (the stream first, so no request meets a
        # closed port).
        self._server = subprocess.Popen(
            command,
            start_new_session=True,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=server_env(os.environ, self.hubspot_url, self.salesforce_url, self.secrets, bundle),
        )
        self._wait_until_ready()

    def _wait_until_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        with requests.Session() as session:
            session.trust_env = False  # loopback: no proxy
            while True:
                self.check_server()
                try:
                    if session.get(f"{self.base}/healthz", timeout=2).status_code == 200:
                        return
                except requests.RequestException:
                    pass
                if time.monotonic() > deadline:
                    raise SandboxError(
                        f"the server did not answer in {timeout:.0f} s{self._tail()}"
                    )
                time.sleep(0.2)

    def check_server(self) -> None:
        """SandboxError, with the end of its log, when the server has stopped."""
        if self._server is not None and self._server.poll() is not None:
            code = self._server.returncode
            raise SandboxError(f"the server stopped (exit status {code}){self._tail()}")

    def _tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            return ""
        return "; its log ends:\n" + "\n".join(f"  {line}" for line in text)

    def server_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def close(self) -> None:
        """Stop the server (gunicorn's graceful SIGTERM), the stand-ins; remove the files."""
        server, self._server = self._server, None
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        for each in reversed(self._servers):
            each.stop()
        self._servers.clear()
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None
