"""A body over the 1 MiB cap is a 413 however it is framed: with a Content-Length or chunked,
through a real gunicorn (werkzeug alone cut a chunked body at the cap and parsed the rest)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
from collections.abc import Iterator

import pytest
import yaml
from conftest import FIXTURES
from fakes.salesforce_api import QUEUE_ID, salesforce_config_data
from served import serving

CAP = 1024 * 1024  # connector/app.py's MAX_CONTENT_LENGTH
FLOW_TOKEN = "flow-s3cret"
LEAD = json.dumps({"Id": "00Q5g0000000001EAA", "OwnerId": QUEUE_ID, "Company": "Acme"}).encode()
OUTBOUND = (FIXTURES / "salesforce" / "one_lead.xml").read_bytes()


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """``leadrelay serve`` on a free port, one worker."""
    config = tmp_path_factory.mktemp("served") / "app.yaml"
    config.write_text(yaml.safe_dump(salesforce_config_data(store="sqlite:///state.sqlite")))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LEADRELAY_", "SALESFORCE_"))}
    env.update(LEADRELAY_FLOW_TOKEN=FLOW_TOKEN, HUBSPOT_CLIENT_SECRET="s")
    with serving(config, env) as served:
        yield served.port


def post(
    port: int, path: str, body: bytes, headers: dict[str, str], *, chunked: bool
) -> tuple[int, bytes]:
    """POST raw bytes (``Transfer-Encoding: chunked`` or a ``Content-Length``); status and body.

    The body is sent from another thread while this one reads, so an early answer is read
    even if the server stops reading what is sent.
    """
    framing = {"Transfer-Encoding": "chunked"} if chunked else {"Content-Length": str(len(body))}
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in {**headers, **framing}.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode()
    if chunked:
        parts = [body[i : i + 65536] for i in range(0, len(body), 65536)]
        body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in parts) + b"0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:

        def send() -> None:
            with contextlib.suppress(OSError):  # the server answered, closed, read no more
                sock.sendall(head + body)

        sender = threading.Thread(target=send)
        sender.start()
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass
        sender.join()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


def padded(body: bytes, size: int) -> bytes:
    """``body`` followed by spaces up to ``size`` bytes: still the same JSON or XML."""
    return body + b" " * (size - len(body))


FLOW = (
    "/salesforce/route",
    LEAD,
    {"Authorization": f"Bearer {FLOW_TOKEN}", "Content-Type": "application/json"},
)
ENDPOINTS = {
    "flow": FLOW,
    "outbound": ("/salesforce/outbound", OUTBOUND, {"Content-Type": "text/xml; charset=utf-8"}),
    "hubspot action": ("/hubspot/action", b"{}", {"Content-Type": "application/json"}),
}


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("endpoint", list(ENDPOINTS.values()), ids=list(ENDPOINTS))
def test_a_body_one_byte_over_the_cap_is_a_413_however_it_is_framed(port, endpoint, chunked):
    path, body, headers = endpoint
    status, answer = post(port, path, padded(body, CAP + 1), headers, chunked=chunked)
    assert status == 413, answer[:300]
    if path == "/salesforce/outbound":
        assert b"<faultcode>soapenv:Client</faultcode>" in answer
    else:
        assert json.loads(answer)["error"]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
def test_a_body_of_exactly_the_cap_is_routed(port, chunked):
    path, body, headers = FLOW
    status, answer = post(port, path, padded(body, CAP), headers, chunked=chunked)
    assert status == 200, answer[:300]
    assert json.loads(answer)["leadId"] == "00Q5g0000000001EAA"


def test_valid_json_followed_by_megabytes_of_spaces_sent_chunked_is_not_routed(port):
    path, body, headers = FLOW
    status, answer = post(port, path, padded(body, 3 * CAP), headers, chunked=True)
    assert status == 413, answer[:300]
