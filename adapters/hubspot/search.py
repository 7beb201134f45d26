"""Find every record of one kind (contacts, companies, deals, tickets) a HubSpot owner owns
(for ``leadrelay reassign``), within search's limits.

HubSpot's search answers at most 200 results a page and 10,000 per query, a few requests a
second. Pages are taken by *keyset*: each query asks for the owner's contacts with
``hs_object_id`` above the last one seen, sorted by it, so no query ever needs more than one
page, whatever the book's size. It also keeps working while we reassign: paging with ``after``
(an offset) would skip contacts as the ones already moved drop out of the results.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from adapters.hubspot.client import HubSpotApi
from adapters.hubspot.contact import OWNER_PROPERTY
from adapters.hubspot.limits import call
from adapters.hubspot.objects import CONTACT, hubspot_object
from workflows.config import Config

SEARCH_PAGE_LIMIT = 200  # HubSpot's maximum page size for search
ID_PROPERTY = "hs_object_id"
ASSIGNED_PROPERTY = "hubspot_owner_assigneddate"  # when the current owner got the contact
# Lifecycle stages past the lead: a customer's owner is an account manager's business.
CLOSED_STAGES = frozenset({"customer", "evangelist"})
REASSIGN_PROPERTIES = (ID_PROPERTY, OWNER_PROPERTY, ASSIGNED_PROPERTY, "lifecyclestage",
                       "hs_lead_status")  # fmt: skip
DEAL_CLOSED = "hs_is_closed"  # a deal closed won or lost


class HubSpotSearch:
    """Search of one object type (contacts unless ``kind`` says otherwise) through a
    ``HubSpotApi``: its client, rate limiter and retry policy."""

    def __init__(self, api: HubSpotApi, kind: str = "contact") -> None:
        self.object = hubspot_object(kind)
        self._contacts = api.contacts_search
        self._objects = api.objects_search
        self.limiter = api.limiter
        self.policy = api.policy

    def _do_search(self, body: dict[str, Any], timeout: Any) -> Any:
        if self.object is CONTACT:
            return self._contacts.do_search(body, _request_timeout=timeout)
        return self._objects.do_search(self.object.path, body, _request_timeout=timeout)

    def page(
        self, owner_id: str, properties: Sequence[str], above: int, limit: int
    ) -> tuple[int, list[tuple[str, dict[str, Any]]]]:
        """(total matching, the first ``limit`` contacts of ``owner_id`` with id > ``above``)."""
        body = {
            "filterGroups": [
                {
                    "filters": [
                        {"propertyName": OWNER_PROPERTY, "operator": "EQ", "value": owner_id},
                        {"propertyName": ID_PROPERTY, "operator": "GT", "value": str(above)},
                    ]
                }
            ],
            "sorts": [{"propertyName": ID_PROPERTY, "direction": "ASCENDING"}],
            "properties": list(properties),
            "limit": limit,
        }
        answer = call(
            lambda timeout: self._do_search(body, timeout),
            f"searching the {self.object.path} of owner {owner_id}",
            limiter=self.limiter,
            deadline=time.monotonic() + self.policy.budget,
            policy=self.policy,
        )
        found = [(str(r.id), dict(r.properties or {})) for r in answer.results or ()]
        return int(answer.total or 0), found

    def owned_by(
        self, owner_id: str, properties: Sequence[str], *, page_size: int = SEARCH_PAGE_LIMIT
    ) -> tuple[int, Iterator[tuple[str, dict[str, Any]]]]:
        """(how many the owner has now, every (id, properties) of theirs, a page at a time).

        The first page is read now (CrmError if HubSpot fails); the others as iterated.
        """
        wanted = sorted({*properties, *REASSIGN_PROPERTIES, *self._closed_properties()})
        total, first = self.page(owner_id, wanted, 0, page_size)

        def pages() -> Iterator[tuple[str, dict[str, Any]]]:
            left, found = total, first
            while found:
                yield from found
                if len(found) >= left:  # that was the last page: no empty query to end on
                    return
                left, found = self.page(owner_id, wanted, int(found[-1][0]), page_size)

        return total, pages()

    def _closed_properties(self) -> tuple[str, ...]:
        return (DEAL_CLOSED,) if self.object.kind == "deal" else ()


def closed_reason(properties: Mapping[str, Any], config: Config) -> str | None:
    """Why a record counts as converted or closed, or None while it is open."""
    if str(properties.get(DEAL_CLOSED) or "").lower() == "true":
        return "deal closed"
    stage = str(properties.get("lifecyclestage") or "").lower()
    if stage in CLOSED_STAGES:
        return f"lifecycle stage {stage}"
    status = str(properties.get("hs_lead_status") or "")
    if status and status in config.hubspot.disqualified_statuses:
        return f"lead status {status}"
    return None


def owner_marker(properties: Mapping[str, Any]) -> str:
    """When the current owner got the record, as HubSpot records it ("" when unknown)."""
    return str(properties.get(ASSIGNED_PROPERTY) or "")
