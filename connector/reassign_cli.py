"""Placeholder while the command is being written (issue 5)."""

import click


@click.command("reassign")
def reassign() -> None:
    """Not available yet."""
    raise click.ClickException("not available yet")
