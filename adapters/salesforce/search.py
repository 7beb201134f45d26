"""Find every record of one object a Salesforce user owns (for ``leadrelay reassign``): open
Leads, or Contacts, Accounts, Opportunities, Cases, a page at a time.

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
from adapters.salesforce.objects import LEAD, OBJECTS
from workflows.config import Config

_FIELD_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
OWNED_SOQL = "SELECT {:literal} FROM Lead WHERE OwnerId = {} AND IsConverted = false ORDER BY Id"
OWNED_OBJECT_SOQL = "SELECT {:literal} FROM {:literal} WHERE OwnerId = {} ORDER BY Id"


def query_fields(extra: Iterable[str] = (), kind: str = "lead") -> list[str]:
    """The standard fields routing reads from ``kind`` records (Leads unless it says
    otherwise), plus ``extra`` (custom fields rules name)."""
    obj = OBJECTS[kind]
    closed = [name for name in ("IsConverted", "IsClosed") if name in obj.sweep_fields]
    fields = dict.fromkeys([*obj.fields, *closed])
    for name in extra:
        # It goes into SOQL: plain API names only, and only Salesforce-looking ones (standard
        # fields are capitalized, custom ones end in __c), not a HubSpot rule's `raw.jobtitle`.
        if _FIELD_NAME.fullmatch(name) and (name[0].isupper() or name.endswith("__c")):
            fields.setdefault(name)
    return list(fields)


def owned_by(
    connection: SalesforceConnection,
    user_id: str,
    extra_fields: Iterable[str] = (),
    kind: str = "lead",
) -> tuple[int, Iterator[dict[str, Any]]]:
    """(how many ``kind`` records the user owns, each one's fields): the first page read now.

    Raises CrmError when Salesforce fails (on the first page now, on later ones as iterated).
    """
    obj = OBJECTS[kind]
    fields = ", ".join(query_fields(extra_fields, kind))
    if obj is LEAD:
        soql = format_soql(OWNED_SOQL, fields, user_id)
    else:
        soql = format_soql(OWNED_OBJECT_SOQL, fields, obj.sobject, user_id)
    what = f"{obj.sobject} records" if obj is not LEAD else "leads"
    first = _call(connection, lambda sf: sf.query(soql), f"listing the {what} of {user_id}")

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
                f"listing the {what} of {user_id} (next page)",
            )

    return int(first.get("totalSize") or 0), rows()


def _call(connection: SalesforceConnection, action: Any, doing: str) -> dict[str, Any]:
    try:
        answer = connection.call(action)
    except CALL_ERRORS as exc:
        raise crm_error(exc, doing) from None
    return answer if isinstance(answer, dict) else {}


def closed_reason(row: dict[str, Any], config: Config) -> str | None:
    """Why a record counts as closed (a Lead's disqualified Status, a closed Opportunity or
    Case), or None while it is open."""
    if row.get("IsClosed"):
        return "closed"
    status = str(row.get("Status") or "")
    if "IsClosed" not in row and status and status in config.salesforce.disqualified_statuses:
        return f"status {status}"
    return None
