"""A local stand-in of HubSpot's CRM API, for ``leadrelay demo``: owners and contacts in memory.

It answers the calls hubspot-api-client makes, in HubSpot's documented shapes (owners pages,
contact read and update, batch read and update), behind a bearer token, and serves readable
pages of its contacts (``/`` and the record pages links point to). Every answer carries
``X-LeadRelay-Sandbox``; every page and error says it is a sandbox, not HubSpot.
"""

from __future__ import annotations

import html
import itertools
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from connector.sandbox.pages import SANDBOX_HEADER, page, table

NOT_HUBSPOT = "leadrelay sandbox: a local stand-in of HubSpot, not HubSpot"


def hubspot_time(moment: datetime) -> str:
    """A time as HubSpot writes one (``2026-11-30T14:05:09.123Z``)."""
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


class HubSpotStandIn:
    """The portal's state (owners, contacts) and the Flask app that serves it."""

    def __init__(self, token: str, owners: Sequence[dict[str, Any]], portal_id: str) -> None:
        self.token = token
        self.portal_id = portal_id
        self.owners = list(owners)
        self.contacts: dict[str, dict[str, Any]] = {}
        self.owner_writes = 0
        self._ids = itertools.count(5001)
        self._lock = threading.Lock()
        self.app = self._build()

    # -- what a sales rep or a form does in the portal ---------------------------------------
    def create_contact(self, properties: dict[str, Any]) -> str:
        """A new contact (as a form submission makes one); its id."""
        with self._lock:
            contact_id = str(next(self._ids))
            now = hubspot_time(datetime.now(UTC))
            self.contacts[contact_id] = {
                "hs_object_id": contact_id, "createdate": now, "lastmodifieddate": now,
                "hs_lead_status": "NEW", "lifecyclestage": "lead", **properties,
            }  # fmt: skip
            return contact_id

    def update_contact(self, contact_id: str, properties: dict[str, Any]) -> None:
        """Change a contact as a rep working it would (log a call, set a status)."""
        with self._lock:
            self.contacts[contact_id].update(properties)

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.contacts[contact_id])

    # -- the API -----------------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("leadrelay-sandbox-hubspot")

        @app.after_request
        def label(answer: Response) -> Response:
            answer.headers[SANDBOX_HEADER] = "hubspot"
            return answer

        @app.before_request
        def authorize() -> Any:
            if not request.path.startswith("/crm/"):
                return None
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return _error(
                    401, "INVALID_AUTHENTICATION", "Authentication credentials not found."
                )
            return None

        app.get("/crm/v3/owners/")(self._owners)
        app.get("/crm/v3/owners")(self._owners)
        app.get("/crm/v3/objects/contacts/<contact_id>")(self._read)
        app.patch("/crm/v3/objects/contacts/<contact_id>")(self._update)
        app.post("/crm/v3/objects/contacts/batch/read")(self._batch_read)
        app.post("/crm/v3/objects/contacts/batch/update")(self._batch_update)
        app.get("/")(self._home)
        app.get("/contacts/<portal>/record/0-1/<contact_id>")(self._record_page)
        app.get("/sandbox.json")(self._state)

        @app.errorhandler(404)
        def missing(_: Exception) -> Any:
            return _error(404, "OBJECT_NOT_FOUND", "the sandbox does not offer this call")

        return app

    def _owners(self) -> Any:
        try:
            start = int(request.args.get("after") or 0)
            limit = min(int(request.args.get("limit") or 100), 100)
        except ValueError:
            return _error(400, "VALIDATION_ERROR", "after and limit must be whole numbers")
        page_: dict[str, Any] = {"results": self.owners[start : start + limit]}
        if start + limit < len(self.owners):
            page_["paging"] = {"next": {"after": str(start + limit)}}
        return jsonify(page_)

    def _object(self, contact_id: str, wanted: Sequence[str]) -> dict[str, Any]:
        props = self.contacts[contact_id]
        names = list(wanted) or list(props)
        return {
            "id": contact_id,
            "properties": {name: props.get(name) for name in names},
            "createdAt": props["createdate"],
            "updatedAt": props["lastmodifieddate"],
            "archived": False,
        }

    def _read(self, contact_id: str) -> Any:
        wanted = [n for v in request.args.getlist("properties") for n in v.split(",") if n]
        with self._lock:
            if contact_id not in self.contacts:
                return _error(404, "OBJECT_NOT_FOUND", f"contact {contact_id} does not exist")
            return jsonify(self._object(contact_id, wanted))

    def _invalid_owner(self, properties: dict[str, Any]) -> Any:
        owner = properties.get("hubspot_owner_id")
        if owner and owner not in {o["id"] for o in self.owners}:
            message = f"Property values were not valid: {owner} is not a valid owner id"
            return _error(400, "VALIDATION_ERROR", message)
        return None

    def _apply(self, contact_id: str, properties: dict[str, Any]) -> None:
        contact = self.contacts[contact_id]
        if "hubspot_owner_id" in properties:
            self.owner_writes += 1
            properties = {
                **properties,
                "hubspot_owner_assigneddate": hubspot_time(datetime.now(UTC)),
            }
        contact.update(properties)
        contact["lastmodifieddate"] = hubspot_time(datetime.now(UTC))

    def _update(self, contact_id: str) -> Any:
        properties = _json_object(request.get_json(silent=True)).get("properties")
        if not isinstance(properties, dict):
            return _error(400, "VALIDATION_ERROR", 'expected {"properties": {...}}')
        refusal = self._invalid_owner(properties)
        if refusal is not None:
            return refusal
        with self._lock:
            if contact_id not in self.contacts:
                return _error(404, "OBJECT_NOT_FOUND", f"contact {contact_id} does not exist")
            self._apply(contact_id, dict(properties))
            return jsonify(self._object(contact_id, list(properties)))

    def _batch(self, update: bool) -> Any:
        body = _json_object(request.get_json(silent=True))
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            return _error(400, "VALIDATION_ERROR", 'expected {"inputs": [{"id": ...}, ...]}')
        if len(inputs) > 100:
            return _error(400, "VALIDATION_ERROR", "at most 100 inputs per batch")
        results, missing = [], []
        with self._lock:
            for item in inputs:
                contact_id = str(item.get("id"))
                if contact_id not in self.contacts:
                    missing.append(contact_id)
                    continue
                given = item.get("properties")
                properties = dict(given) if isinstance(given, dict) else {}
                if update:
                    refusal = self._invalid_owner(properties)
                    if refusal is not None:
                        return refusal
                    self._apply(contact_id, properties)
                wanted = list(properties) if update else body.get("properties") or []
                results.append(self._object(contact_id, wanted))
        now = hubspot_time(datetime.now(UTC))
        answer: dict[str, Any] = {
            "status": "COMPLETE", "results": results, "startedAt": now, "completedAt": now,
        }  # fmt: skip
        if missing:  # HubSpot answers 207 naming the ids it could not find
            answer["numErrors"] = 1
            answer["errors"] = [{
                "status": "error", "category": "OBJECT_NOT_FOUND",
                "message": "Could not get some CONTACT objects, they may be deleted.",
                "context": {"ids": missing}, "links": {}, "errors": [],
            }]  # fmt: skip
        return jsonify(answer), 207 if missing else 200

    def _batch_read(self) -> Any:
        return self._batch(update=False)

    def _batch_update(self) -> Any:
        return self._batch(update=True)

    # -- pages -------------------------------------------------------------------------------
    def _owner_name(self, owner_id: Any) -> str:
        owner = next((o for o in self.owners if o["id"] == owner_id), None)
        return f"{owner['firstName']} {owner['lastName']}" if owner else str(owner_id or "")

    def _rows(self) -> list[list[str]]:
        with self._lock:
            contacts = sorted(self.contacts.items(), key=lambda kv: int(kv[0]), reverse=True)
            return [
                [
                    f'<a href="/contacts/{self.portal_id}/record/0-1/{cid}">{cid}</a>',
                    html.escape(f"{p.get('firstname', '')} {p.get('lastname', '')}"),
                    html.escape(str(p.get("company") or "")),
                    html.escape(str(p.get("country") or "")),
                    html.escape(self._owner_name(p.get("hubspot_owner_id"))),
                    html.escape(str(p.get("hs_lead_status") or "")),
                    html.escape(str(p.get("lifecyclestage") or "")),
                ]
                for cid, p in contacts
            ]

    def _home(self) -> Any:
        headers = ["id", "name", "company", "country", "owner", "lead status", "stage"]
        return page("HubSpot", f"Portal {self.portal_id}: contacts", table(headers, self._rows()))

    def _record_page(self, portal: str, contact_id: str) -> Any:
        with self._lock:
            props = self.contacts.get(contact_id)
            if props is None or portal != self.portal_id:
                return page("HubSpot", "No such contact", "<p>Not in this sandbox.</p>"), 404
            rows = [[html.escape(k), html.escape(str(v))] for k, v in sorted(props.items())]
        title = f"Contact {contact_id}: owner {self._owner_name(props.get('hubspot_owner_id'))}"
        return page("HubSpot", title, table(["property", "value"], rows))

    def _state(self) -> Any:
        with self._lock:
            return jsonify(
                sandbox=NOT_HUBSPOT,
                portal_id=self.portal_id,
                owners=self.owners,
                contacts=self.contacts,
                owner_writes=self.owner_writes,
            )


def owner(owner_id: str, email: str, name: str, user_id: int) -> dict[str, Any]:
    """An owner as ``GET /crm/v3/owners/`` lists it."""
    first, _, last = name.partition(" ")
    stamp = "2026-01-05T09:00:00.000Z"
    return {
        "id": owner_id, "email": email, "firstName": first, "lastName": last,
        "userId": user_id, "userIdIncludingInactive": user_id, "type": "PERSON",
        "createdAt": stamp, "updatedAt": stamp, "archived": False, "teams": [],
    }  # fmt: skip


def _json_object(body: Any) -> dict[str, Any]:
    return body if isinstance(body, dict) else {}


def _error(status: int, category: str, message: str) -> Any:
    body = {
        "status": "error",
        "message": f"{message} ({NOT_HUBSPOT})",
        "correlationId": "sandbox",
        "category": category,
    }
    return jsonify(body), status
