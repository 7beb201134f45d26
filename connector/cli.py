"""``leadrelay``: the admin's command line (check, route, simulate, log, serve)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn
from zoneinfo import ZoneInfo

import click

from adapters.hubspot import check as hubspot_check
from adapters.salesforce import check as salesforce_check
from connector.cli_time import TIME_HELP, TimeError, parse_cli_time
from connector.db_cli import db
from connector.demo_cli import demo, no_crm_hint
from connector.hubspot_cli import hubspot
from connector.json_body import parse_json_body
from connector.log_redaction import redact_command_line_logs
from connector.ops_auth import console_status
from connector.outcomes_cli import outcomes
from connector.output import print_distribution, print_log, result_line
from connector.reassign_cli import reassign
from connector.salesforce_cli import salesforce
from connector.services import build_services
from connector.simulate_columns import plan_columns
from connector.sweep_cli import sweep
from workflows.config import Config
from workflows.config_loader import default_config_path, load_config
from workflows.config_warnings import config_warnings
from workflows.errors import ConfigErrors, LeadError, LeadRelayError
from workflows.model import Lead
from workflows.notify import environment_errors, environment_warnings
from workflows.postgres_url import redact
from workflows.simulate import Distribution, count_rows, csv_headers, read_leads, simulate
from workflows.store import LogQuery
from workflows.store_check import store_problem
from workflows.sweep_model import duration_text


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(1)


class _State:
    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            try:
                self._config = load_config(self.config_path)
            except ConfigErrors as exc:
                click.echo(f"{self.config_path}: invalid configuration", err=True)
                for error in exc.errors:
                    click.echo(f"  {error}", err=True)
                sys.exit(1)
        return self._config

    def time(self, value: str | None, option: str) -> datetime:
        """``value`` of ``option`` as an aware time (see ``cli_time``); now when not given."""
        now = datetime.now(UTC)
        if value is None:
            return now
        try:
            return parse_cli_time(value, ZoneInfo(self.config.timezone), now)
        except TimeError as exc:
            raise click.BadParameter(str(exc), param_hint=[option]) from None


pass_state = click.make_pass_decorator(_State)


@click.group()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="app.yaml to use (default: $LEADRELAY_CONFIG, else ./app.yaml).",
)
@click.pass_context
def main(ctx: click.Context, config_path: Path | None) -> None:
    """leadrelay: route every new lead to the right rep, and say why."""
    ctx.obj = _State(config_path or default_config_path())


@main.command()
@pass_state
def check(state: _State) -> None:
    """Validate app.yaml and summarise it; exit 1 naming the path of any error."""
    config = state.config
    _check_startup(config)
    active = sum(rep.active for rep in config.reps.values())
    click.echo(f"{config.source}: OK (version {config.version})")
    click.echo(f"reps: {len(config.reps)} ({active} active)")
    for pool in config.pools.values():
        click.echo(f"pool {pool.id}: {pool.strategy}, {', '.join(pool.members)}")
    for queue in config.queues.values():
        click.echo(f"queue {queue.name}: {_queue_ids(queue)}")
    click.echo("flow:")
    _print_flow(config, config.flow.rules, indent=2)
    fallback = f"fallback: {', '.join(t.describe() for t in config.fallback.chain())}"
    click.echo(fallback + _task_text(config.task))
    click.echo(f"store: {redact(config.store_url)}")
    click.echo(console_status(os.environ)[0])
    for warning in [
        *hubspot_check.check_warnings(config),
        *salesforce_check.check_warnings(config),
        *config_warnings(config),
        *environment_warnings(config),
    ]:
        click.echo(f"warning: {warning}")


def _check_startup(config: Config) -> None:
    """What app.yaml alone cannot show: the webhook URLs it reads from the environment, and
    whether the store opens. The store is opened once, here: one that cannot be opened would
    otherwise fail every gunicorn worker at boot, each with its own traceback."""
    errors = environment_errors(config)
    if errors:
        click.echo(f"{config.source}: invalid environment", err=True)
        for error in errors:
            click.echo(f"  {error}", err=True)
        sys.exit(1)
    problem = store_problem(config.store_url)
    if problem:
        _fail(f"store: {problem}")


def _print_flow(config: Config, rules: list[Any], indent: int, parent: str = "") -> None:
    for rule in rules:
        path = f"{parent}/{rule.name}" if parent else rule.name
        line = f"{' ' * indent}{rule.name}"
        if rule.assign:  # the whole else: chain, as the fallback's line shows it
            line += f" -> {', else '.join(t.describe() for t in rule.assign.chain())}"
            if any(t.kind not in ("queue", "keep") for t in rule.assign.chain()):
                line += _task_text(config.task_for(path))  # a queue or a kept owner gets none
        click.echo(line)
        if rule.flow is not None:
            _print_flow(config, rule.flow.rules, indent + 2, path)


def _queue_ids(queue: Any) -> str:
    ids = [f"salesforce {queue.salesforce}"] if queue.salesforce else []
    ids += [f"hubspot owner {queue.hubspot_owner_id}"] if queue.hubspot_owner_id else []
    ids += [f"pick-up {duration_text(queue.first_touch)}"] if queue.first_touch else []
    return ", ".join(ids) or "no CRM id (its else: decides)"


def _task_text(task: Any) -> str:
    if task is None:
        return ""
    clock = "working hours" if task.clock == "working_hours" else "wall clock"
    return f"; task: {task.type}, {task.priority}, due {duration_text(task.due)} ({clock})"


@main.command()
@click.argument("lead_json")
@click.option(
    "--at", "at", metavar="TIME", help=f"Route as if at this time (default now). TIME: {TIME_HELP}."
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per lead.")
@pass_state
def route(state: _State, lead_json: str, at: str | None, as_json: bool) -> None:
    """Show who would get LEAD_JSON (an object, or a list of them) and why. A dry run."""
    try:
        payload = parse_json_body(lead_json.encode("utf-8", "surrogatepass"))
    except LeadError as exc:
        problem = str(exc).removeprefix(f"{exc.field}: ")
        where = "" if exc.field == "body" else f" at {exc.field}"
        _fail(
            f"LEAD_JSON is {problem}{where}"
            if problem.startswith("not ")
            else f"LEAD_JSON{where}: {problem}"
        )
    items = payload if isinstance(payload, list) else [payload]
    if not items or not all(isinstance(item, dict) for item in items):
        _fail("LEAD_JSON must be a JSON object or a list of objects")
    now = state.time(at, "--at")
    services = build_services(state.config)
    try:
        router = services.router
        for number, item in enumerate(items):
            item.setdefault("id", f"lead-{number + 1}")
            try:
                lead = Lead.from_dict(item)
            except LeadError as exc:
                _fail(str(exc))
            result = router.route(lead, now, source="cli", dry_run=True)
            click.echo(result_line(result.decision, as_json, verbose=True))
    finally:
        services.close()


@main.command("simulate")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--at", "at", metavar="TIME",
    help=f"Routing time for rows without created_at (default now). TIME: {TIME_HELP}.",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="One JSON object per lead, no summary.")
@pass_state
def simulate_command(state: _State, csv_path: Path, at: str | None, as_json: bool) -> None:
    """Dry-run a CSV of leads on a scratch copy of the state; print the distribution.

    Headers are lead field names or HubSpot's and Salesforce's export headers (Country/Region,
    Number of Employees, NumberOfEmployees, Lead Source...), in any case and spacing; columns
    no rule reads are named in a warning.
    """
    config = state.config
    default_time = state.time(at, "--at")
    totals = Distribution()
    try:
        plan = plan_columns(csv_headers(csv_path), config)
        for warning in plan.warnings:
            click.echo(f"warning: {csv_path.name}: {warning}", err=True)
        leads = read_leads(csv_path, ZoneInfo(config.timezone), plan.columns)
        with click.progressbar(
            length=count_rows(csv_path), label="routing", file=sys.stderr
        ) as progress:
            for result in simulate(config, leads, default_time):
                totals.add(result)
                progress.update(1)
                if as_json:
                    click.echo(result_line(result.decision, as_json=True))
    except LeadError as exc:
        _fail(str(exc))
    if not as_json:
        print_distribution(totals)


@main.command("log")
@click.option(
    "--since", metavar="TIME", help=f"Only decisions at or after this time. TIME: {TIME_HELP}."
)
@click.option("--rep", help="Only decisions that gave a lead to, or took it from, this rep.")
@click.option("--lead", help="Only decisions about this lead id.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table",
    show_default=True,
)  # fmt: skip
@pass_state
def log_command(
    state: _State, since: str | None, rep: str | None, lead: str | None, fmt: str
) -> None:
    """Review the assignment log, oldest first."""
    query = LogQuery(since=state.time(since, "--since") if since else None, rep=rep, lead=lead)
    services = build_services(state.config)
    try:
        print_log(services.store.log(query), fmt)
    finally:
        services.close()


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(min=1))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(min=1))
@pass_state
def serve(state: _State, host: str, port: int, workers: int, threads: int) -> None:
    """Serve the HTTP endpoints with gunicorn (GET /healthz answers once ready)."""
    from connector.serve import serve as run_server

    config = state.config
    _check_startup(config)  # fail fast on a bad app.yaml or store, before forking workers
    if hint := no_crm_hint(os.environ):
        click.echo(hint, err=True)
    webhook_envs = [hook.url_env for hook in config.notify if hook.url_env]
    run_server(state.config_path, host, port, workers, threads, secret_envs=webhook_envs)


main.add_command(hubspot)
main.add_command(salesforce)
main.add_command(sweep)
main.add_command(reassign)
main.add_command(outcomes)
main.add_command(demo)
main.add_command(db)


def run() -> None:
    """Entry point that turns leadrelay's own errors into a message and exit status 1."""
    redact_command_line_logs()
    try:
        main(standalone_mode=True)
    except LeadRelayError as exc:
        _fail(str(exc))
