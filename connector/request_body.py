"""Read a request's whole body, refusing one longer than the app's cap however it is framed.

werkzeug refuses a ``Content-Length`` over ``MAX_CONTENT_LENGTH`` before reading anything. A
chunked body announces no length: when the server terminates the stream itself (gunicorn sets
``wsgi.input_terminated``), werkzeug reads it only up to the cap and then stops, without an
error, so a longer body would be cut at exactly the cap and parsed as if it were whole.
"""

from __future__ import annotations

from flask import Request
from werkzeug.exceptions import RequestEntityTooLarge


def read_body(request: Request) -> bytes:
    """The body of ``request``; ``RequestEntityTooLarge`` (413) when it is over the cap.

    The body is cached on the request, so a later ``get_data`` (the signature check) sees the
    same bytes without reading again.
    """
    data = request.get_data()
    cap = request.max_content_length
    # Chunked and cut at the cap: one more byte from the server's own stream says whether the
    # body went on. (With a Content-Length, werkzeug has already refused one over the cap.)
    chunked_to_the_cap = cap is not None and len(data) >= cap and request.content_length is None
    if chunked_to_the_cap and request.input_stream.read(1):
        raise RequestEntityTooLarge()  # werkzeug's own words, as for a Content-Length
    return data
