"""Find every open Lead a Salesforce user owns (for ``leadrelay reassign``), a page at a time.

One SOQL query by OwnerId, read page by page through ``nextRecordsUrl`` (Salesforce keeps the
result set for the query, so writes between pages skip nothing). Converted leads are left out:
Salesforce refuses to change their owner.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from simple_salesforce.format import format_soql

from adapters.salesforce.auth import SalesforceConnection
from adapters.salesforce.errors import CALL_ERRORS, crm_error
from adapters.salesforce.lead import LEAD_FIELDS
from workflows.config import Config

_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
OWNED_SOQL = "SELECT {:literal} FROM Lead WHERE OwnerId = {} AND IsConverted = false ORDER BY Id"


def query_fields(extra: Iterable[str] = ()) -> list[str]:
    """The standard Lead fields routing reads, plus ``extra`` (custom fields rules name)."""
    fields = dict.fromkeys([*LEAD_FIELDS, "IsConverted"])
    for name in extra:
        # It goes into SOQL: plain API names only, and only Salesforce-looking ones (standard
        # fields are capitalized, custom ones end in __c), not a HubSpot rule's `raw.jobtitle`.
        if _FIELD_NAME.fullmatch(name) and (name[0].isupper() or name.endswith("__c")):
            fields.setdefault(name)
    return list(fields)


def owned_by(
    connection: SalesforceConnection, user_id: str, extra_fields: Iterable[str] = ()
) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many leads the user owns, each lead's fields): the first page read now.

    Raises CrmError when Salesforce fails (on the first page now, on later ones as iterated).
    """
    soql = format_soql(OWNED_SOQL, ", ".join(query_fields(extra_fields)), user_id)
    first = _call(connection, lambda sf: sf.query(soql), f"listing the leads of {user_id}")

    def rows() -> Iterator[dict[str, Any]]:
        page = first
        while True:
            for record in page.get("records") or ():
                yield {k: v for k, v in record.items() if k != "attributes"}
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = _call(
                connection,
                lambda sf, url=next_url: sf.query_more(url, identifier_is_url=True),
                f"listing the leads of {user_id} (next page)",
            )

    return int(first.get("totalSize") or 0), rows()


def _call(connection: SalesforceConnection, action: Any, doing: str) -> dict[str, Any]:
    try:
        answer = connection.call(action)
    except CALL_ERRORS as exc:
        raise crm_error(exc, doing) from None
    return answer if isinstance(answer, dict) else {}


def closed_reason(row: dict[str, Any], config: Config) -> str | None:
    """Why a lead counts as closed (a disqualified Status), or None while it is open."""
    status = str(row.get("Status") or "")
    if status and status in config.salesforce.disqualified_statuses:
        return f"status {status}"
    return None
