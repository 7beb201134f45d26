"""``leadrelay demo``: a sandbox to watch leadrelay work with no CRM account.

It starts local stand-ins of HubSpot and Salesforce, a real server (gunicorn and the SLA
sweeper) pointed at them, and a stream of signed deliveries; it prints the console's address
and token. Ctrl-C (or ``--for`` / ``--leads``) stops everything and removes its files.
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from collections.abc import Mapping
from datetime import timedelta
from types import FrameType
from typing import NoReturn

import click
from pydantic import TypeAdapter, ValidationError

from adapters.hubspot.contact import ACCESS_TOKEN_ENV, CLIENT_SECRET_ENV
from adapters.salesforce.auth import auth_mode
from connector.sandbox.run import Sandbox, SandboxError
from connector.sandbox.team import sweep_every
from connector.sandbox.traffic import Traffic
from workflows.config_loader import load_config
from workflows.config_schema import Duration

_DURATION: TypeAdapter[timedelta] = TypeAdapter(Duration)
DEFAULT_PORT = 8000


def no_crm_hint(env: Mapping[str, str]) -> str | None:
    """The line ``serve`` prints when no CRM credentials are set: where to try leadrelay."""
    hubspot = env.get(CLIENT_SECRET_ENV) or env.get(ACCESS_TOKEN_ENV)
    if hubspot or auth_mode(env) is not None:
        return None
    return (
        "no HubSpot or Salesforce credentials are set: nothing will reach this server. "
        "To watch leadrelay work without a CRM, run `make demo` (or `leadrelay demo`)."
    )


def _duration(value: str | None, option: str) -> timedelta | None:
    if value is None:
        return None
    try:
        return _DURATION.validate_python(value)
    except ValidationError:
        raise click.BadParameter(
            f"{value!r} is not a duration like 30s, 2m or 1h30m", param_hint=[option]
        ) from None


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> NoReturn:
    # Leave through the same path as Ctrl-C, so the server stops and the files go.
    raise KeyboardInterrupt


def _default_port() -> int:
    try:
        return int(os.environ.get("PORT") or DEFAULT_PORT)
    except ValueError:
        raise click.BadParameter(f"PORT={os.environ['PORT']!r} is not a port number") from None


@click.command()
@click.option(
    "--port", type=click.IntRange(1, 65535), default=_default_port,
    help="The server's port on 127.0.0.1 (default: $PORT, else 8000).",
)  # fmt: skip
@click.option("--for", "run_for", metavar="DURATION", help="Stop after this long (30s, 5m).")
@click.option("--leads", type=click.IntRange(min=1), help="Stop after this many leads.")
@click.option(
    "--first-touch", default="30s", show_default=True, metavar="DURATION",
    help="The SLA's first-touch time: untouched leads rotate, then escalate, after it.",
)  # fmt: skip
@click.option(
    "--every", "interval", type=click.FloatRange(min=0.05), default=1.5, show_default=True,
    help="Seconds between new leads.",
)  # fmt: skip
@click.option("--seed", type=int, help="Make the stream of leads repeatable.")
def demo(
    port: int,
    run_for: str | None,
    leads: int | None,
    first_touch: str,
    interval: float,
    seed: int | None,
) -> None:
    """Run leadrelay against local SANDBOX stand-ins of HubSpot and Salesforce, with a stream
    of realistic leads, until Ctrl-C. Needs no CRM account and touches no real CRM."""
    stop_after = _duration(run_for, "--for")
    touch = _duration(first_touch, "--first-touch") or timedelta(seconds=30)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # Ctrl-C stops the demo even when started where SIGINT is ignored (a background job).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    click.echo("leadrelay demo: a SANDBOX. HubSpot and Salesforce are local stand-ins; no real")
    click.echo("CRM is called and every person and company is made up. Starting...")
    try:
        with Sandbox(port, touch) as sandbox:
            _announce(sandbox)
            traffic = Traffic(
                base=sandbox.base,
                config=load_config(sandbox.config_path),
                hubspot=sandbox.hubspot,
                salesforce=sandbox.salesforce,
                salesforce_url=sandbox.salesforce_url,
                hubspot_secret=sandbox.secrets.hubspot_client_secret,
                outbound_token=sandbox.secrets.outbound_token,
                first_touch=touch.total_seconds(),
                rng=random.Random(seed),
                say=click.echo,
            )
            try:
                _stream(sandbox, traffic, stop_after, leads, interval)
            except KeyboardInterrupt:
                click.echo("stopping (Ctrl-C)...")
            finally:
                traffic.close()
                click.echo(f"summary: {traffic.tally.describe()}")
                # Cleaning up takes seconds and is bounded (gunicorn is killed after 30 s):
                # a second Ctrl-C must not leave the server or the files behind.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
                click.echo("stopping the server and the stand-ins...")
    except SandboxError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        click.echo("stopped before the sandbox was up; nothing left behind")
        sys.exit(130)
    click.echo("demo stopped; its files are removed")


def _announce(sandbox: Sandbox) -> None:
    token = sandbox.secrets.ops_token
    sweep = sweep_every(sandbox.first_touch)
    click.echo(f"  HubSpot stand-in:    {sandbox.hubspot_url}/  (SANDBOX)")
    click.echo(f"  Salesforce stand-in: {sandbox.salesforce_url}/  (SANDBOX, self-signed TLS)")
    click.echo(f"  config:  {sandbox.config_path}  (this run only; removed at exit)")
    click.echo(
        f"  server:  {sandbox.base}  (gunicorn, {sandbox.workers} workers; SLA first touch "
        f"{int(sandbox.first_touch.total_seconds())}s, swept every {sweep}s)"
    )
    click.echo(f"  console: {sandbox.base}/ops")
    click.echo(f"  token:   {token}  (LEADRELAY_OPS_TOKEN of this run)")
    click.echo(f"  API:     curl -H 'Authorization: Bearer {token}' {sandbox.base}/api/assignments")
    click.echo("Streaming leads; Ctrl-C stops everything.")


def _stream(
    sandbox: Sandbox,
    traffic: Traffic,
    stop_after: timedelta | None,
    leads: int | None,
    interval: float,
) -> None:
    start = time.monotonic()
    end = start + stop_after.total_seconds() if stop_after else None
    next_lead, sent = start, 0
    while True:
        now = time.monotonic()
        if end is not None and now >= end:
            return
        if leads is not None and sent >= leads and not traffic.pending and end is None:
            return
        if (leads is None or sent < leads) and now >= next_lead:
            traffic.new_lead()
            sent += 1
            next_lead = now + interval * traffic.rng.uniform(0.5, 1.5)
        traffic.run_due()
        traffic.watch_owners()
        sandbox.check_server()
        time.sleep(0.05)
