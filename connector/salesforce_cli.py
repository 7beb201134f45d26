"""Placeholder while the connector is being written."""

import click


@click.group("salesforce")
def salesforce() -> None:
    """salesforce commands."""
