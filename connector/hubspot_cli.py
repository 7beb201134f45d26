"""Placeholder while the connector is being written."""

import click


@click.group("hubspot")
def hubspot() -> None:
    """hubspot commands."""
