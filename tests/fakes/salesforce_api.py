"""A fake Salesforce REST API for simple-salesforce, built with ``responses`` from the shapes in
crm-protocols.md (not from what leadrelay sends): sObject update (204), sObject Collections
(per-record results), SOQL query paging (nextRecordsUrl), the OAuth token endpoint (JWT bearer,
client credentials), SOAP login (legacy), 401 INVALID_SESSION_ID, and 503 outages.

Every request the fake answers is kept with its headers, so tests can check that each owner
write carried ``Sforce-Auto-Assign: FALSE``.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import responses
from conftest import config_data, rep
from requests import PreparedRequest

from connector.sandbox.deliveries import outbound_message

HOST = "acme.my.salesforce.com"
INSTANCE_URL = f"https://{HOST}"
LOGIN_URL = "https://login.salesforce.com"
VERSION = "59.0"
DATA = f"{INSTANCE_URL}/services/data/v{VERSION}"
CONSUMER_KEY = "3MVG9-fake-consumer-key"
CONSUMER_SECRET = "fake-consumer-secret"
DIRECT_TOKEN = "00D5g000004SbAx!fake-direct-token"
ORG_ID = "00D5g000004SbAxEAK"  # the org of the samples in tests/fixtures/salesforce
QUEUE_ID = "00G5g000003Qe1AEAS"
OWNER_USER_ID = "0055g00000Ab1CdAAJ"  # owns tests/fixtures/salesforce/user_owned.xml
# The fake org's users that are leadrelay reps (conftest's alice, bob and chen).
REP_USERS = {
    "alice": "0055g00000AlIcEAAV",
    "bob": "0055g00000BoB01AAF",
    "chen": "0055g00000ChEn1AAF",
}

Answer = tuple[int, dict[str, str], str]
# The sObjects leadrelay routes, by the key prefix of their ids.
SOBJECT_PREFIXES = {"Lead": "00Q", "Contact": "003", "Account": "001", "Opportunity": "006",
                    "Case": "500"}  # fmt: skip
# What Salesforce answers for an OwnerId naming a queue that does not take this object.
UNKNOWN_QUEUE = ("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")


@dataclass
class Write:
    """One owner written by one HTTP call."""

    lead_id: str
    owner_id: str
    call: int  # the number of the write call that carried it
    headers: dict[str, str]
    sobject: str = "Lead"  # the type the write named (the URL's, or attributes.type)


@dataclass
class FakeSalesforce:
    """The fake org: tokens, lead owners, users, and the switches tests flip."""

    mock: responses.RequestsMock
    valid_tokens: set[str] = field(default_factory=lambda: {DIRECT_TOKEN})
    owners: dict[str, str] = field(default_factory=dict)
    writes: list[Write] = field(default_factory=list)
    write_calls: int = 0  # answered write calls, failed or not
    requests: list[PreparedRequest] = field(default_factory=list)
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)
    # lead id -> (statusCode, message): Salesforce refuses that record.
    refused: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The org's queues that support Leads: any other 00G owner is refused, as Salesforce does.
    queues: set[str] = field(default_factory=lambda: {QUEUE_ID})
    down: bool = False  # every API call answers 503
    outage_after_writes: int | None = None  # write calls that succeed before the outage
    public_key: bytes | None = None  # verifies JWT assertions when set
    users: list[dict[str, Any]] = field(default_factory=list)
    page_size: int = 2
    # Records by Id (Leads, and Contacts, Accounts, Opportunities, Cases: their type is their
    # Id's prefix), answered to SOQL ``SELECT ... FROM <Type> WHERE Id IN (...)``.
    leads: dict[str, dict[str, Any]] = field(default_factory=dict)
    lead_queries: list[str] = field(default_factory=list)
    # Account records by Id ({"Id", "OwnerId", "Website", "IsDeleted"}), answered to SOQL by
    # ``Id IN (...)`` and by ``Website LIKE '%...%' OR ...``; every such query is kept.
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    account_queries: list[str] = field(default_factory=list)
    # (status, errorCode, message) every Account query answers, when set (a missing permission).
    account_query_error: tuple[int, str, str] | None = None
    _tokens: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    # SOQL by OwnerId (``leadrelay reassign``): its result sets, paged by nextRecordsUrl.
    owned_queries: list[str] = field(default_factory=list)
    owned_query_pages: int | None = None  # pages answered before the next ones answer 503
    _cursors: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # Task records by id, as created (and later updated) through sObject Collections.
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    task_calls: int = 0  # sObject Collections calls that carried Task records
    tasks_down: int = 0  # the next Task calls that answer 503

    def __post_init__(self) -> None:
        types = "|".join(SOBJECT_PREFIXES)
        lead_url = re.compile(rf"{re.escape(DATA)}/sobjects/({types})/(?P<id>[^/?]+)$")
        self.mock.add_callback("PATCH", lead_url, callback=self._update_one)
        self.mock.add_callback("PATCH", f"{DATA}/composite/sobjects", callback=self._update_many)
        self.mock.add_callback("POST", f"{DATA}/composite/sobjects", callback=self._create_many)
        self.mock.add_callback("POST", f"{DATA}/composite", callback=self._composite)
        self.mock.add_callback("DELETE", re.compile(rf"{re.escape(DATA)}/composite/sobjects\?.*"),
                               callback=self._delete_many)  # fmt: skip
        self.mock.add_callback("GET", re.compile(rf"{re.escape(DATA)}/query/?(\?.*)?$"),
                               callback=self._query)  # fmt: skip
        self.mock.add_callback("GET", re.compile(rf"{re.escape(DATA)}/queryAll/?(\?.*)?$"),
                               callback=self._query)  # fmt: skip
        self.mock.add_callback("GET", re.compile(rf"{re.escape(DATA)}/query/01g[^/?]+$"),
                               callback=self._query_more)  # fmt: skip
        for host in (LOGIN_URL, INSTANCE_URL):
            self.mock.add_callback("POST", f"{host}/services/oauth2/token", callback=self._token)
        self.mock.add_callback(
            "POST", f"{LOGIN_URL}/services/Soap/u/{VERSION}", callback=self._soap_login
        )

    # -- environments for each sign-in mode --------------------------------------------------
    @staticmethod
    def direct_env() -> dict[str, str]:
        return {"SALESFORCE_INSTANCE_URL": INSTANCE_URL, "SALESFORCE_ACCESS_TOKEN": DIRECT_TOKEN}

    @staticmethod
    def client_credentials_env() -> dict[str, str]:
        return {
            "SALESFORCE_CONSUMER_KEY": CONSUMER_KEY,
            "SALESFORCE_CONSUMER_SECRET": CONSUMER_SECRET,
            "SALESFORCE_DOMAIN": "acme.my",
        }

    @staticmethod
    def legacy_env() -> dict[str, str]:
        return {
            "SALESFORCE_USERNAME": "integration@acme.example",
            "SALESFORCE_PASSWORD": "pa55word",
            "SALESFORCE_SECURITY_TOKEN": "sectoken",
        }

    def expire_tokens(self) -> None:
        """Every token issued so far is now expired (the next API call answers 401)."""
        self.valid_tokens.clear()

    @property
    def written_leads(self) -> list[str]:
        return [w.lead_id for w in self.writes]

    # -- the REST API ------------------------------------------------------------------------
    def _refusal(self, request: PreparedRequest) -> Answer | None:
        self.requests.append(request)
        auth = request.headers.get("Authorization", "")
        if auth.removeprefix("Bearer ") not in self.valid_tokens:
            body = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
            return 401, {"Content-Type": "application/json"}, json.dumps(body)
        if self.down:
            return _error(503, "SERVER_UNAVAILABLE", "Service Unavailable")
        return None

    def _write_refusal(self, request: PreparedRequest) -> Answer | None:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        self.write_calls += 1
        if self.outage_after_writes is not None and self.write_calls > self.outage_after_writes:
            return _error(503, "SERVER_UNAVAILABLE", "Service Unavailable")
        return None

    def _record(
        self, lead_id: str, owner_id: str, request: PreparedRequest, sobject: str = "Lead"
    ) -> None:
        self.owners[lead_id] = owner_id
        self.writes.append(
            Write(lead_id, owner_id, self.write_calls, dict(request.headers), sobject)
        )

    def _unknown_queue(self, owner: Any) -> bool:
        return str(owner).startswith("00G") and str(owner)[:15] not in {q[:15] for q in self.queues}

    def _update_one(self, request: PreparedRequest) -> Answer:
        refusal = self._write_refusal(request)
        if refusal is not None:
            return refusal
        sobject, lead_id = str(request.url).rsplit("/", 2)[1:]
        body = json.loads(request.body or b"{}")
        if set(body) != {"OwnerId"}:
            return _error(400, "JSON_PARSER_ERROR", f"unexpected fields {sorted(body)}")
        if not lead_id.startswith(SOBJECT_PREFIXES[sobject]):
            return _error(404, "NOT_FOUND", f"Provided external ID field does not exist: {lead_id}")
        if lead_id in self.refused:
            code, message = self.refused[lead_id]
            return _error(400, code, message)
        if self._unknown_queue(body["OwnerId"]):
            return _error(400, *UNKNOWN_QUEUE)
        self._record(lead_id, body["OwnerId"], request, sobject)
        return 204, {}, ""

    def _update_many(self, request: PreparedRequest) -> Answer:
        refusal = self._write_refusal(request)
        if refusal is not None:
            return refusal
        return self._apply_update(request)

    def _apply_update(self, request: Any) -> Answer:
        records = _collection(request)
        if isinstance(records, tuple):
            return records
        if all(r.get("attributes", {}).get("type") == "Task" for r in records):
            return self._update_tasks(records)
        results = []
        for record in records:
            lead_id = record.get("Id")
            sobject = record.get("attributes", {}).get("type")
            if sobject not in SOBJECT_PREFIXES:
                results.append(_record_error("INVALID_TYPE", "attributes.type is required"))
            elif not str(lead_id).startswith(SOBJECT_PREFIXES[sobject]):
                results.append(_record_error("MALFORMED_ID", f"bad id {lead_id} for {sobject}"))
            elif lead_id in self.refused:
                results.append(_record_error(*self.refused[lead_id]))
            elif self._unknown_queue(record.get("OwnerId")):
                results.append(_record_error(*UNKNOWN_QUEUE))
            else:
                self._record(lead_id, record["OwnerId"], request, sobject)
                results.append({"id": lead_id, "success": True, "errors": []})
        return 200, {"Content-Type": "application/json"}, json.dumps(results)

    def tasks_of(self, record_id: str) -> list[dict[str, Any]]:
        """The tasks whose WhoId or WhatId is ``record_id``, oldest first."""
        return [t for t in self.tasks.values() if record_id in (t.get("WhoId"), t.get("WhatId"))]

    def _task_outage(self) -> Answer | None:
        self.task_calls += 1
        if self.tasks_down > 0:
            self.tasks_down -= 1
            return _error(503, "SERVER_UNAVAILABLE", "Service Unavailable")
        return None

    def _create_many(self, request: PreparedRequest) -> Answer:
        # POST composite/sobjects: create up to 200 records, one result each, in order.
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        return self._apply_create(request)

    def _composite(self, request: PreparedRequest) -> Answer:
        # POST composite: up to 25 subrequests in one call, each answered in
        # compositeResponse (here: sObject Collections updates and creates).
        refusal = self._write_refusal(request)
        if refusal is not None:
            return refusal
        body = json.loads(request.body or b"{}")
        subs = body.get("compositeRequest")
        if not isinstance(body.get("allOrNone", False), bool) or not isinstance(subs, list):
            return _error(400, "JSON_PARSER_ERROR", "compositeRequest is required")
        if not 1 <= len(subs) <= 25:
            return _error(400, "INVALID_BATCH_REQUEST", "1 to 25 subrequests")
        parts = []
        for sub in subs:
            inner = _Inner(json.dumps(sub.get("body")).encode(),
                           {**request.headers, **(sub.get("httpHeaders") or {})})  # fmt: skip
            collections = f"/services/data/v{VERSION}/composite/sobjects"
            if sub.get("url") != collections or sub.get("method") not in ("PATCH", "POST"):
                status, _, text = _error(400, "NOT_FOUND", "the fake knows collections only")
            elif sub["method"] == "PATCH":
                status, _, text = self._apply_update(inner)
            else:
                status, _, text = self._apply_create(inner)
            parts.append({"body": json.loads(text), "httpHeaders": {}, "httpStatusCode": status,
                          "referenceId": sub.get("referenceId")})  # fmt: skip
        return 200, {"Content-Type": "application/json"}, json.dumps({"compositeResponse": parts})

    def _delete_many(self, request: PreparedRequest) -> Answer:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        ids = parse_qs(urlparse(str(request.url)).query).get("ids", [""])[0].split(",")
        results = []
        for record_id in ids:
            gone = self.tasks.pop(record_id, None)
            results.append({"id": record_id, "success": True, "errors": []} if gone else
                           _record_error("ENTITY_IS_DELETED", "entity is deleted"))  # fmt: skip
        return 200, {"Content-Type": "application/json"}, json.dumps(results)

    def _apply_create(self, request: Any) -> Answer:
        records = _collection(request)
        if isinstance(records, tuple):
            return records
        outage = self._task_outage()
        if outage is not None:
            return outage
        results = []
        for record in records:
            if record.get("attributes", {}).get("type") != "Task" or "Id" in record:
                results.append(_record_error("INVALID_FIELD", "only new Task records"))
                continue
            owner, who, what = record.get("OwnerId"), record.get("WhoId"), record.get("WhatId")
            if not str(owner).startswith("005"):
                problem = "Assigned To ID: id value of incorrect type"
                results.append(_record_error("FIELD_INTEGRITY_EXCEPTION", problem))
            elif who is not None and not str(who).startswith(("00Q", "003")):
                results.append(_record_error("FIELD_INTEGRITY_EXCEPTION", "Name ID: bad type"))
            elif what is not None and not str(what).startswith(("001", "006", "500")):
                results.append(_record_error("FIELD_INTEGRITY_EXCEPTION", "Related To ID: bad"))
            else:
                task_id = f"00T5g{len(self.tasks) + 1:010d}AAA"
                self.tasks[task_id] = {k: v for k, v in record.items() if k != "attributes"}
                results.append({"id": task_id, "success": True, "errors": []})
        return 200, {"Content-Type": "application/json"}, json.dumps(results)

    def _update_tasks(self, records: list[dict[str, Any]]) -> Answer:
        outage = self._task_outage()
        if outage is not None:
            return outage
        results = []
        for record in records:
            task = self.tasks.get(str(record.get("Id")))
            if task is None:
                results.append(_record_error("ENTITY_IS_DELETED", "entity is deleted"))
                continue
            task.update({k: v for k, v in record.items() if k not in ("attributes", "Id")})
            results.append({"id": record["Id"], "success": True, "errors": []})
        return 200, {"Content-Type": "application/json"}, json.dumps(results)

    def _query(self, request: PreparedRequest) -> Answer:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        soql = parse_qs(urlparse(str(request.url)).query)["q"][0]
        accounts = self.accounts or self.account_query_error is not None
        if soql.startswith("SELECT ") and " FROM Account WHERE " in soql and accounts:
            # A test that set up Accounts for account-owner lookups asks about those; one
            # that routes Account records keeps them with the other records.
            return self._account_query(soql, include_deleted="/queryAll" in str(request.url))
        if soql.startswith("SELECT ") and re.search(r" FROM \w+ WHERE Id IN \(", soql):
            return self._lead_query(soql, include_deleted="/queryAll" in str(request.url))
        if soql.startswith("SELECT ") and re.search(r" FROM \w+ WHERE OwnerId = ", soql):
            return self._owned_query(soql)
        if soql.startswith("SELECT ") and " FROM Account WHERE " in soql:
            return self._account_query(soql, include_deleted="/queryAll" in str(request.url))
        if not soql.startswith("SELECT ") or " FROM User " not in soql:
            return _error(400, "MALFORMED_QUERY", "the fake only knows User queries")
        return self._page(0)

    def _owned_query(self, soql: str) -> Answer:
        # SELECT f, ... FROM <Type> WHERE OwnerId = '005...' [AND IsConverted = false]
        # ORDER BY Id
        self.owned_queries.append(soql)
        match = re.fullmatch(
            r"SELECT (.+) FROM (\w+) WHERE OwnerId = '([^'\\]*)'( AND IsConverted = false)?"
            r" ORDER BY Id",
            soql,
        )
        if match is None or match.group(2) not in SOBJECT_PREFIXES:
            return _error(400, "MALFORMED_QUERY", f"the fake cannot read {soql!r}")
        fields = [name.strip() for name in match.group(1).split(",")]
        sobject = match.group(2)
        owner, open_only = match.group(3)[:15], bool(match.group(4))
        rows = []
        for lead_id, lead in sorted(self.leads.items()):
            current = self.owners.get(lead_id, lead.get("OwnerId"))
            if str(current)[:15] != owner or (open_only and lead.get("IsConverted")):
                continue
            if not lead_id.startswith(SOBJECT_PREFIXES[sobject]):
                continue
            record = {name: lead.get(name) for name in fields}
            record["OwnerId"] = current
            url = f"/services/data/v{VERSION}/sobjects/{sobject}/{lead_id}"
            rows.append({"attributes": {"type": sobject, "url": url}, **record})
        cursor = f"01gOwned{len(self._cursors):08d}"
        self._cursors[cursor] = rows
        return self._cursor_page(cursor, 0)

    def _cursor_page(self, cursor: str, start: int) -> Answer:
        if self.owned_query_pages is not None:
            if self.owned_query_pages <= 0:
                return _error(503, "SERVER_UNAVAILABLE", "Service Unavailable")
            self.owned_query_pages -= 1
        rows = self._cursors[cursor]
        done = start + self.page_size >= len(rows)
        page: dict[str, Any] = {
            "totalSize": len(rows), "done": done, "records": rows[start : start + self.page_size],
        }  # fmt: skip
        if not done:
            page["nextRecordsUrl"] = (
                f"/services/data/v{VERSION}/query/{cursor}-{start + self.page_size}"
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(page)

    def _lead_query(self, soql: str, include_deleted: bool) -> Answer:
        self.lead_queries.append(soql)
        if len(soql) > 100_000:
            return _error(400, "MALFORMED_QUERY", "SOQL statements cannot exceed 100000 characters")
        fields = [f.strip() for f in soql[len("SELECT ") : soql.index(" FROM ")].split(",")]
        sobject = soql[soql.index(" FROM ") + 6 :].split(" ", 1)[0]
        if sobject not in SOBJECT_PREFIXES:
            return _error(400, "INVALID_TYPE", f"sObject type '{sobject}' is not supported.")
        wanted = re.findall(r"'((?:[^'\\]|\\.)*)'", soql[soql.index(" IN (") :])
        records = []
        for lead_id in wanted:
            lead = self.leads.get(lead_id) or next(
                (v for k, v in self.leads.items() if k[:15] == lead_id[:15]), None
            )
            if lead is None or (lead.get("IsDeleted") and not include_deleted):
                continue
            if not lead["Id"].startswith(SOBJECT_PREFIXES[sobject]):
                continue  # another object's record: FROM Case never finds a Lead
            record = {name: lead.get(name) for name in fields}
            record["OwnerId"] = self.owners.get(lead["Id"], lead.get("OwnerId"))
            url = f"/services/data/v{VERSION}/sobjects/{sobject}/{lead['Id']}"
            records.append({"attributes": {"type": sobject, "url": url}, **record})
        page = {"totalSize": len(records), "done": True, "records": records}
        return 200, {"Content-Type": "application/json"}, json.dumps(page)

    def _account_query(self, soql: str, include_deleted: bool) -> Answer:
        # Only the two shapes Salesforce would answer as leadrelay asks: Id IN ('001...', ...)
        # or Website LIKE '%host%' OR ...; LIKE is case-insensitive, \\% and \\_ are literal.
        self.account_queries.append(soql)
        if self.account_query_error is not None:
            return _error(*self.account_query_error)
        fields = [f.strip() for f in soql[len("SELECT ") : soql.index(" FROM ")].split(",")]
        where = soql[soql.index(" WHERE ") + len(" WHERE ") :]
        literal = r"'((?:[^'\\]|\\.)*)'"
        if where.startswith("Id IN ("):
            ids = {i[:15] for i in re.findall(literal, where)}
            matches = lambda a: a["Id"][:15] in ids  # noqa: E731
        elif re.fullmatch(rf"Website LIKE {literal}(?: OR Website LIKE {literal})*", where):
            patterns = [
                re.compile(
                    "".join(
                        ".*" if part == "%" else "." if part == "_" else re.escape(part[-1])
                        for part in re.findall(r"\\.|%|_|.", pattern, re.S)
                    ),
                    re.I | re.S,
                )
                for pattern in re.findall(literal, where)
            ]
            matches = lambda a: any(p.fullmatch(a.get("Website") or "") for p in patterns)  # noqa: E731
        else:
            return _error(400, "MALFORMED_QUERY", f"the fake cannot read {soql!r}")
        records = [
            {"attributes": {"type": "Account", "url": f"/services/data/v{VERSION}/sobjects/"
                            f"Account/{a['Id']}"}, **{name: a.get(name) for name in fields}}
            for a in self.accounts.values()
            if matches(a) and (include_deleted or not a.get("IsDeleted"))
        ]  # fmt: skip
        page = {"totalSize": len(records), "done": True, "records": records}
        return 200, {"Content-Type": "application/json"}, json.dumps(page)

    def _query_more(self, request: PreparedRequest) -> Answer:
        refusal = self._refusal(request)
        if refusal is not None:
            return refusal
        cursor, _, start = str(request.url).rsplit("/", 1)[1].rpartition("-")
        if cursor in self._cursors:
            return self._cursor_page(cursor, int(start))
        return self._page(int(str(request.url).rsplit("-", 1)[1]))

    def _page(self, start: int) -> Answer:
        users = f"/services/data/v{VERSION}/sobjects/User"
        records = [
            {"attributes": {"type": "User", "url": f"{users}/{u['Id']}"}, **u}
            for u in self.users[start : start + self.page_size]
        ]
        done = start + self.page_size >= len(self.users)
        page: dict[str, Any] = {"totalSize": len(self.users), "done": done, "records": records}
        if not done:
            page["nextRecordsUrl"] = (
                f"/services/data/v{VERSION}/query/01gD0000002HU6KIAW-{start + self.page_size}"
            )
        return 200, {"Content-Type": "application/json"}, json.dumps(page)

    # -- signing in --------------------------------------------------------------------------
    def _issue(self) -> str:
        token = f"00D5g000004SbAx!token-{next(self._tokens)}"
        self.valid_tokens.add(token)
        return token

    def _token(self, request: PreparedRequest) -> Answer:
        form = parse_qs(str(request.body))
        self.token_requests.append(form)
        grant = form.get("grant_type", [""])[0]
        if grant == "client_credentials":
            expected = base64.b64encode(f"{CONSUMER_KEY}:{CONSUMER_SECRET}".encode()).decode()
            if request.headers.get("Authorization") != f"Basic {expected}":
                return _oauth_error("invalid_client", "invalid client credentials")
        elif grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form["assertion"][0],
                    self.public_key or b"",
                    algorithms=["RS256"],
                    audience="https://login.salesforce.com",
                )
            except (jwt.PyJWTError, KeyError, ValueError):
                return _oauth_error("invalid_grant", "invalid assertion")
            if claims.get("iss") != CONSUMER_KEY:
                return _oauth_error("invalid_client_id", "client identifier invalid")
        else:
            return _oauth_error("unsupported_grant_type", "grant type not supported")
        answer = {
            "access_token": self._issue(),
            "instance_url": INSTANCE_URL,
            "id": f"{LOGIN_URL}/id/{ORG_ID}/0055g00000Ab1CdAAJ",
            "token_type": "Bearer",
            "issued_at": "1764000000000",
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(answer)

    def _soap_login(self, request: PreparedRequest) -> Answer:
        self.token_requests.append({"grant_type": ["soap-login"]})
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope'
            ' xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
            ' xmlns="urn:partner.soap.sforce.com"><soapenv:Body><loginResponse><result>'
            f"<serverUrl>{INSTANCE_URL}/services/Soap/u/{VERSION}/{ORG_ID[:15]}</serverUrl>"
            f"<sessionId>{self._issue()}</sessionId>"
            "</result></loginResponse></soapenv:Body></soapenv:Envelope>"
        )
        return 200, {"Content-Type": "text/xml"}, body


def _collection(request: Any) -> list[dict[str, Any]] | Answer:
    """The records of an sObject Collections body, or the 400 that refuses it."""
    body = json.loads(request.body or b"{}")
    records = body.get("records")
    if not isinstance(body.get("allOrNone"), bool) or not isinstance(records, list):
        return _error(400, "JSON_PARSER_ERROR", "allOrNone and records are required")
    if not 1 <= len(records) <= 200:
        return _error(400, "EXCEEDED_ID_LIMIT", "record limit exceeded. Limit is 200")
    return records


@dataclass
class _Inner:
    """A composite subrequest, shaped like the request a handler reads."""

    body: bytes
    headers: dict[str, str]


def _error(status: int, code: str, message: str) -> Answer:
    body = [{"errorCode": code, "message": message, "fields": []}]
    return status, {"Content-Type": "application/json"}, json.dumps(body)


def _record_error(code: str, message: str) -> dict[str, Any]:
    return {"id": None, "success": False, "errors": [{"statusCode": code, "message": message,
                                                     "fields": []}]}  # fmt: skip


def _oauth_error(code: str, description: str) -> Answer:
    body = {"error": code, "error_description": description}
    return 400, {"Content-Type": "application/json"}, json.dumps(body)


def outbound_body(notifications: list[tuple[str, dict[str, Any]]]) -> bytes:
    """An Outbound Message from the fake org: one Notification per (notification id, Lead
    fields), built as the sandbox's stand-in sends them."""
    return outbound_message(
        "https://leads.example.com/salesforce/outbound",
        org_id=ORG_ID,
        action_id="04k5g000000KmQpAAK",
        instance_url=INSTANCE_URL,
        notifications=notifications,
    ).body


def salesforce_config_data(**overrides: Any) -> dict[str, Any]:
    """conftest's small app.yaml with reps mapped to the fake org's users and its org allowed."""
    data = config_data(
        reps=[rep(name, salesforce_user_id=user_id) for name, user_id in REP_USERS.items()],
        salesforce={"org_ids": [ORG_ID]},
    )
    data.update(overrides)
    return data


@pytest.fixture
def fake_salesforce(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeSalesforce]:
    """The fake org, with leadrelay signed in by access token (tests switch modes by env)."""
    for name in list(os.environ):
        if name.startswith("SALESFORCE_") or name.startswith("LEADRELAY_"):
            monkeypatch.delenv(name)
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        fake = FakeSalesforce(mock)
        for name, value in fake.direct_env().items():
            monkeypatch.setenv(name, value)
        yield fake
