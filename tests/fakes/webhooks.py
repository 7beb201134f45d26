"""A webhook receiver served over loopback HTTP: records the JSON body of every POST.

It answers 200 unless told otherwise: ``answer(status, headers)`` queues answers, used in
order, and ``delay`` holds every answer back (a slow receiver).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response


class _Quiet(WSGIRequestHandler):
    # The access log would put the webhook's secret path into the logs tests search.
    def log(self, type: str, message: str, *args: Any) -> None:
        pass


class WebhookReceiver:
    """Keeps the JSON body of every POST (``received``) and every request's path (``paths``)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.delay = 0.0
        self._answers: list[tuple[int, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = make_server(
            "127.0.0.1", 0, self._wsgi, threaded=True, request_handler=_Quiet
        )
        self.base = f"http://127.0.0.1:{self._server.server_port}"
        self.url = f"{self.base}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        """Answer the next request not yet scripted with ``status`` (and ``headers``)."""
        with self._lock:
            self._answers.append((status, headers or {}))

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.paths.append(request.path)
            if request.method == "POST":
                self.received.append(json.loads(request.get_data(as_text=True)))
            status, headers = self._answers.pop(0) if self._answers else (200, {})
        if self.delay:
            time.sleep(self.delay)
        return Response("ok", status, headers)(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()
