"""Serve the app with gunicorn, a production WSGI server (never Flask's development server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


class LeadRelayServer(BaseApplication):  # type: ignore[misc]
    """gunicorn with leadrelay's app factory; each worker builds its own app after forking.

    Building the app after the fork matters: the embedded store's writer thread would not
    survive it.
    """

    def __init__(self, config_path: Path, options: dict[str, Any]) -> None:
        self.config_path = config_path
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from connector.app import create_app

        return create_app(config_path=self.config_path)


def serve(config_path: Path, host: str, port: int, workers: int, threads: int) -> None:
    """Run until stopped."""
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # HubSpot gives an action about 30 s; never hold a worker longer than that.
        "timeout": 30,
        "accesslog": "-",
        "preload_app": False,
    }
    LeadRelayServer(config_path, options).run()
