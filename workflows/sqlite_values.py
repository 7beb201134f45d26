"""How the embedded store keeps values: one table of JSON text, keyed by the ledger's keys."""

from __future__ import annotations

import json
from typing import Any

import orjson

TABLE = "leadrelay"


def encode(value: Any) -> str:
    # orjson: a logged decision's JSON is most of its Python cost with the json module.
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:
        # What orjson refuses but JSON can carry: a lone surrogate a CRM let through (JSON's
        # "\ud800" escape), an integer beyond 64 bits. Stored, never lost to a 500.
        return json.dumps(value, separators=(",", ":"))


def decode(value: str | bytes) -> Any:
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return json.loads(value)  # what encode's fallback wrote (or NaN from older stores)
