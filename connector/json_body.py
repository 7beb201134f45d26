"""Read an untrusted JSON request body into plain data, or raise ``LeadError`` saying why.

The standard library's parser accepts what a CRM never sends and the rest of leadrelay must
never see: nesting thousands of levels deep (a ``RecursionError``, so a 500, further on),
``NaN``/``Infinity`` and numbers such as ``1e400`` that overflow to infinity (and then match
``employees >= 1000``). orjson refuses those too, but also lone surrogates, which CRMs do let
through in names, so the standard parser stays and this module adds the missing checks.
"""

from __future__ import annotations

import json
import math
from typing import Any

from workflows.errors import LeadError

# CRM payloads nest three or four levels; anything deeper is not one of theirs.
MAX_DEPTH = 32


def parse_json_body(data: bytes) -> Any:
    """The JSON value of ``data``: UTF-8, nested at most ``MAX_DEPTH`` levels, finite numbers."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LeadError("body", f"not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise LeadError("body", f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # JSONDecodeError, and ints longer than Python converts
        raise LeadError("body", f"not valid JSON ({exc})") from None
    _check(value, "", 0)
    return value


def _check(value: Any, path: str, depth: int) -> None:
    # Recursion is safe here: it stops at MAX_DEPTH, far below Python's own limit.
    if depth > MAX_DEPTH:
        raise LeadError(path or "body", f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, float) and not math.isfinite(value):
        raise LeadError(path or "body", "expected a finite number (no NaN, Infinity or 1e400)")
    if isinstance(value, dict):
        for key, item in value.items():
            _check(item, f"{path}.{key}" if path else str(key), depth + 1)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            _check(item, f"{path}[{number}]", depth + 1)
