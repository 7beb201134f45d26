"""The HTTP and command-line edge: the Flask app factory, its blueprints, and the CLI."""

from connector.app import create_app

__all__ = ["create_app"]
