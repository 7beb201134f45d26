"""A local stand-in of Salesforce's REST API, for ``leadrelay demo``: users and Leads in memory.

It answers the calls simple-salesforce makes for leadrelay (OwnerId updates one by one or by
sObject Collections, SOQL reads of Leads by Id and of active users), in Salesforce's shapes,
behind a bearer token, over TLS (simple-salesforce only speaks https). It serves readable pages
of its Leads, at ``/`` and at the Lightning record paths links point to. Every answer carries
``X-LeadRelay-Sandbox``; every page and error says it is a sandbox, not Salesforce.
"""

from __future__ import annotations

import html
import itertools
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, jsonify, request

from connector.sandbox.pages import SANDBOX_HEADER, page, table

NOT_SALESFORCE = "leadrelay sandbox: a local stand-in of Salesforce, not Salesforce"
_QUOTED = re.compile(r"'((?:[^'\\]|\\.)*)'")
_LEAD_BY_ID = re.compile(r"SELECT (.+) FROM Lead WHERE Id IN \((.*)\)\s*$", re.DOTALL)


def salesforce_time(moment: datetime) -> str:
    """A datetime as Salesforce's REST API writes one (``2026-11-30T14:05:09.000+0000``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


class SalesforceStandIn:
    """The org's state (users, Leads) and the Flask app that serves it."""

    def __init__(self, token: str, users: Sequence[dict[str, Any]], org_id: str) -> None:
        self.token = token
        self.org_id = org_id
        self.users = list(users)
        self.leads: dict[str, dict[str, Any]] = {}
        self.owner_writes: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.app = self._build()

    # -- what a web form or a rep does in the org -------------------------------------------
    def create_lead(self, fields: dict[str, Any]) -> str:
        """A new Lead (as web-to-lead makes one); its 18-character id."""
        with self._lock:
            lead_id = f"00QDEMO{next(self._ids):08d}AAA"
            self.leads[lead_id] = {
                "Id": lead_id, "Status": "Open - Not Contacted", "IsConverted": False,
                "IsDeleted": False, "LastActivityDate": None,
                "CreatedDate": salesforce_time(datetime.now(UTC)), **fields,
            }  # fmt: skip
            return lead_id

    def update_lead(self, lead_id: str, fields: dict[str, Any]) -> None:
        """Change a Lead as a rep working it would (log a call, set a status, convert it)."""
        with self._lock:
            self.leads[lead_id].update(fields)

    def lead(self, lead_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self.leads[lead_id])

    # -- the REST API ------------------------------------------------------------------------
    def _build(self) -> Flask:
        app = Flask("leadrelay-sandbox-salesforce")
        data = "/services/data/<version>"

        @app.after_request
        def label(answer: Response) -> Response:
            answer.headers[SANDBOX_HEADER] = "salesforce"
            return answer

        @app.before_request
        def authorize() -> Any:
            if not request.path.startswith("/services/"):
                return None
            if request.headers.get("Authorization") != f"Bearer {self.token}":
                return _error(401, "INVALID_SESSION_ID", "Session expired or invalid")
            return None

        app.patch(f"{data}/sobjects/Lead/<lead_id>")(self._update_one)
        app.patch(f"{data}/composite/sobjects")(self._update_many)
        app.get(f"{data}/query/")(self._query)
        app.get(f"{data}/query")(self._query)
        app.get(f"{data}/queryAll/")(self._query)
        app.get(f"{data}/queryAll")(self._query)
        app.get("/")(self._home)
        app.get("/lightning/r/Lead/<lead_id>/view")(self._record_page)
        app.get("/sandbox.json")(self._state)

        @app.errorhandler(404)
        def missing(_: Exception) -> Any:
            return _error(404, "NOT_FOUND", "The requested resource does not exist")

        return app

    def _find(self, lead_id: str) -> dict[str, Any] | None:
        # 15- and 18-character forms name the same record.
        return next((lead for key, lead in self.leads.items() if key[:15] == lead_id[:15]), None)

    def _write(self, lead_id: str, owner: Any) -> str | None:
        """Set OwnerId; the error code when refused."""
        lead = self._find(lead_id)
        if lead is None:
            return "ENTITY_IS_DELETED"
        if owner not in {u["Id"] for u in self.users}:
            return "INVALID_CROSS_REFERENCE_KEY"
        lead["OwnerId"] = owner
        self.owner_writes.append({
            "lead": lead["Id"], "owner": owner,
            # Without it, a real org runs its assignment rule over the owner just written.
            "auto_assign": request.headers.get("Sforce-Auto-Assign"),
        })  # fmt: skip
        return None

    def _update_one(self, version: str, lead_id: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or set(body) != {"OwnerId"}:
            return _error(400, "JSON_PARSER_ERROR", "the sandbox takes OwnerId updates only")
        with self._lock:
            code = self._write(lead_id, body["OwnerId"])
        if code is not None:
            return _error(
                400 if code != "ENTITY_IS_DELETED" else 404, code, f"cannot update {lead_id}"
            )
        return Response(status=204)

    def _update_many(self, version: str) -> Any:
        body = request.get_json(silent=True)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
            return _error(400, "JSON_PARSER_ERROR", 'expected {"records": [{...}, ...]}')
        if not 1 <= len(records) <= 200:
            return _error(400, "EXCEEDED_ID_LIMIT", "1 to 200 records per call")
        results = []
        with self._lock:
            for record in records:
                lead_id = str(record.get("Id") or "")
                code = (
                    self._write(lead_id, record.get("OwnerId")) if lead_id else "MISSING_ARGUMENT"
                )
                if code is None:
                    results.append({"id": lead_id, "success": True, "errors": []})
                else:
                    error = {
                        "statusCode": code,
                        "message": f"cannot update {lead_id}",
                        "fields": [],
                    }
                    results.append({"id": None, "success": False, "errors": [error]})
        return jsonify(results)

    def _query(self, version: str) -> Any:
        soql = request.args.get("q", "")
        match = _LEAD_BY_ID.fullmatch(soql.strip())
        if match is not None:
            fields = [name.strip() for name in match.group(1).split(",")]
            wanted = [value.replace("\\'", "'") for value in _QUOTED.findall(match.group(2))]
            with self._lock:
                found = [lead for lead in map(self._find, wanted) if lead is not None]
                rows = [_row("Lead", version, lead, fields) for lead in found]
            return jsonify(totalSize=len(rows), done=True, records=rows)
        if soql.startswith("SELECT ") and " FROM User" in soql:
            fields = [n.strip() for n in soql[len("SELECT ") : soql.index(" FROM ")].split(",")]
            rows = [_row("User", version, user, fields) for user in self.users]
            return jsonify(totalSize=len(rows), done=True, records=rows)
        return _error(400, "MALFORMED_QUERY", "the sandbox answers Lead-by-Id and User queries")

    # -- pages -------------------------------------------------------------------------------
    def _user_name(self, user_id: Any) -> str:
        user = next((u for u in self.users if u["Id"] == user_id), None)
        return str(user["Name"]) if user else f"{user_id or ''} (queue)"

    def _home(self) -> Any:
        with self._lock:
            leads = sorted(self.leads.values(), key=lambda lead: lead["Id"], reverse=True)
            rows = [
                [
                    f'<a href="/lightning/r/Lead/{lead["Id"]}/view">{lead["Id"]}</a>',
                    html.escape(f"{lead.get('FirstName', '')} {lead.get('LastName', '')}"),
                    html.escape(str(lead.get("Company") or "")),
                    html.escape(str(lead.get("Country") or "")),
                    html.escape(self._user_name(lead.get("OwnerId"))),
                    html.escape(str(lead.get("Status") or "")),
                ]
                for lead in leads
            ]
        headers = ["id", "name", "company", "country", "owner", "status"]
        return page("Salesforce", f"Org {self.org_id}: leads", table(headers, rows))

    def _record_page(self, lead_id: str) -> Any:
        with self._lock:
            lead = self._find(lead_id)
            if lead is None:
                return page("Salesforce", "No such lead", "<p>Not in this sandbox.</p>"), 404
            rows = [[html.escape(k), html.escape(str(v))] for k, v in sorted(lead.items())]
            title = f"Lead {lead['Id']}: owner {self._user_name(lead.get('OwnerId'))}"
        return page("Salesforce", title, table(["field", "value"], rows))

    def _state(self) -> Any:
        with self._lock:
            return jsonify(
                sandbox=NOT_SALESFORCE,
                org_id=self.org_id,
                users=self.users,
                leads=self.leads,
                owner_writes=self.owner_writes,
            )


def user(user_id: str, name: str, email: str) -> dict[str, Any]:
    """An active standard user, as a SOQL query of User answers it."""
    return {"Id": user_id, "Name": name, "Email": email, "Username": email,
            "IsActive": True, "UserType": "Standard"}  # fmt: skip


def _row(kind: str, version: str, record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    url = f"/services/data/{version}/sobjects/{kind}/{record['Id']}"
    return {"attributes": {"type": kind, "url": url}, **{f: record.get(f) for f in fields}}


def _error(status: int, code: str, message: str) -> Any:
    body = [{"errorCode": code, "message": f"{message} ({NOT_SALESFORCE})", "fields": []}]
    return jsonify(body), status
