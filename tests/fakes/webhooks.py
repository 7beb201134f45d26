"""A webhook receiver served over loopback HTTP: records the JSON body of every POST."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class WebhookReceiver:
    """Answers 200 to every POST and keeps its JSON body (``received``)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}/hook"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        with self._lock:
            self.received.append(json.loads(request.get_data(as_text=True)))
        return Response("ok")(environ, start_response)

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()


@pytest.fixture
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.stop()
