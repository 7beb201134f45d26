"""A fake HubSpot API served over loopback HTTP, for the real hubspot-api-client to talk to.

hubspot-api-client speaks urllib3, which ``responses`` cannot see, so this is a small WSGI app
in a thread. It answers in the shapes HubSpot documents (see
../shared/reference/crm-protocols.md): owners pages, read/update, batch read/update and search
of contacts, companies, deals and tickets (the same calls under crm/v3/objects/<type>), action
definitions, callback completion (one, or a batch of at most ``CALLBACK_BATCH_LIMIT``). It can
be told to fail the next calls (429 with Retry-After, 5xx, 401) and records every request so
tests count API calls.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

TOKEN = "pat-na1-test-token"
DEVELOPER_KEY = "dev-key-test"
STAMP = "2026-11-24T15:00:00.000Z"
BATCH_LIMIT = 100  # records per batch update
# The object types the fake serves under /crm/v3/objects/<path>, with HubSpot's type ids.
OBJECT_TYPES = {"contacts": "CONTACT", "companies": "COMPANY", "deals": "DEAL",
                "tickets": "TICKET"}  # fmt: skip
CALLBACK_BATCH_LIMIT = 100  # callbacks per batch completion


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    at: float


@dataclass
class _Failure:
    status: int
    times: int
    path: str
    retry_after: str | None
    delay: float
    after: int = 0  # matching requests answered normally before the failures start
    policy: str = "TEN_SECONDLY_ROLLING"  # a 429's policyName: which limit was hit


def owner_record(owner_id: str, email: str, first: str, last: str, user_id: int) -> dict[str, Any]:
    """An owner as ``GET /crm/v3/owners/`` lists it."""
    return {
        "id": owner_id, "email": email, "firstName": first, "lastName": last,
        "userId": user_id, "userIdIncludingInactive": user_id, "type": "PERSON",
        "createdAt": STAMP, "updatedAt": STAMP, "archived": False, "teams": [],
    }  # fmt: skip


@dataclass
class FakeHubSpot:
    """State of the fake portal plus the server that serves it."""

    token: str = TOKEN
    developer_key: str = DEVELOPER_KEY
    owners: list[dict[str, Any]] = field(default_factory=list)
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    companies: dict[str, dict[str, Any]] = field(default_factory=dict)
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[str, dict[str, Any]] = field(default_factory=dict)
    definitions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    completed: list[dict[str, Any]] = field(default_factory=list)
    # Every execution completed by the batch endpoint: {"callbackId", "outputFields"}.
    batch_completed: list[dict[str, Any]] = field(default_factory=list)
    # Callbacks HubSpot no longer knows (expired): a batch naming one is refused whole (400).
    expired_callbacks: set[str] = field(default_factory=set)
    # Follow-up tasks by id: their properties and associations ({"to", "typeId"}).
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    failures: list[_Failure] = field(default_factory=list)
    page_size: int = 100
    url: str = ""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(5001)
        if not self.owners:  # the owners of app.yaml's reps alice, bob, chen
            self.owners = [
                owner_record("101", "alice@example.com", "Alice", "Ng", 9001),
                owner_record("102", "bob@example.com", "Bob", "Marsh", 9002),
                owner_record("103", "chen@example.com", "Chen", "Li", 9003),
            ]

    # -- test controls --------------------------------------------------------------------
    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        path: str = "/",
        retry_after: str | None = None,
        delay: float = 0.0,
        after: int = 0,
        policy: str = "TEN_SECONDLY_ROLLING",
    ) -> None:
        """Answer the next ``times`` requests under ``path`` with ``status`` (0: just delay),
        once ``after`` of them have been answered normally. A 429 names ``policy`` (``DAILY``:
        the portal's daily limit)."""
        self.failures.append(_Failure(status, times, path, retry_after, delay, after, policy))

    def calls(self, method: str | None = None, path: str = "/") -> list[Recorded]:
        """Recorded requests, optionally of one method under one path prefix."""
        return [
            r
            for r in self.requests
            if (method is None or r.method == method) and r.path.startswith(path)
        ]

    def add_contact(self, contact_id: str, **properties: Any) -> None:
        self.contacts[contact_id] = {"hs_object_id": contact_id, **properties}

    def add_record(self, object_type: str, record_id: str, **properties: Any) -> None:
        """A company, deal or ticket (``object_type`` as in the path: ``deals``)."""
        self.records(object_type)[record_id] = {"hs_object_id": record_id, **properties}

    def records(self, object_type: str) -> dict[str, dict[str, Any]]:
        """The records of one object type, by the path's name (``contacts``, ``deals``)."""
        return {"contacts": self.contacts, "companies": self.companies, "deals": self.deals,
                "tickets": self.tickets}[object_type]  # fmt: skip

    # -- serving ----------------------------------------------------------------------------
    def start(self) -> FakeHubSpot:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()

    def _wsgi(self, environ: dict, start_response: Any) -> Any:
        return self._respond(Request(environ))(environ, start_response)

    def _respond(self, request: Request) -> Response:
        raw = request.get_data(as_text=True)
        body = json.loads(raw) if raw else None
        query = {key: request.args.getlist(key) for key in request.args}
        with self._lock:
            self.requests.append(Recorded(request.method, request.path, query, body, time.time()))
            failure = next((f for f in self.failures if request.path.startswith(f.path)), None)
            if failure is not None and failure.after > 0:
                failure.after -= 1
                failure = None
            if failure is not None:
                failure.times -= 1
                if failure.times <= 0:
                    self.failures.remove(failure)
        if failure is not None:
            time.sleep(failure.delay)
            if failure.status:
                return self._error(failure.status, failure.retry_after, failure.policy)
        if request.path.startswith("/automation/v4/actions/"):
            if request.path.startswith("/automation/v4/actions/callbacks/"):
                if request.headers.get("Authorization") != f"Bearer {self.token}":
                    return self._error(401)
                if request.path == "/automation/v4/actions/callbacks/complete":
                    return self._complete_batch(body or {})
                self.completed.append(body)
                return Response(status=204)
            if request.args.get("hapikey") != self.developer_key:
                return self._error(401)
            return self._definitions(request, body)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return self._error(401)
        return self._crm(request, body)

    # -- answers ------------------------------------------------------------------------
    @staticmethod
    def _json(data: Any, status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, mimetype="application/json")

    def _error(
        self, status: int, retry_after: str | None = None, policy: str = "TEN_SECONDLY_ROLLING"
    ) -> Response:
        category = {401: "INVALID_AUTHENTICATION", 404: "OBJECT_NOT_FOUND", 429: "RATE_LIMITS"}
        message = {
            401: "Authentication credentials not found.",
            429: f"You have reached your {policy.lower()} limit.",
        }.get(status, "internal error" if status >= 500 else "bad request")
        body = {
            "status": "error",
            "message": message,
            "correlationId": "0000-test",
            "category": category.get(status, "VALIDATION_ERROR"),
        }
        if status == 429:  # HubSpot's rate-limit answers say which limit was hit
            body.update(errorType="RATE_LIMIT", policyName=policy)
        answer = self._json(body, status)
        if retry_after is not None:
            answer.headers["Retry-After"] = retry_after
        return answer

    def _object(self, object_id: str, props: dict[str, Any], wanted: list[str]) -> dict:
        names = wanted or list(props)
        return {
            "id": object_id,
            "properties": {name: props.get(name) for name in names},
            "createdAt": STAMP,
            "updatedAt": STAMP,
            "archived": False,
        }

    @staticmethod
    def _wanted(request: Request) -> list[str]:
        # The client sends ?properties=a&properties=b; people also write a,b.
        return [n for value in request.args.getlist("properties") for n in value.split(",") if n]

    def _crm(self, request: Request, body: Any) -> Response:
        parts = request.path.strip("/").split("/")
        if parts[:3] == ["crm", "v3", "owners"]:
            start = int(request.args.get("after") or 0)
            limit = min(int(request.args.get("limit") or 100), self.page_size)
            page: dict[str, Any] = {"results": self.owners[start : start + limit]}
            if start + limit < len(self.owners):
                page["paging"] = {"next": {"after": str(start + limit), "link": "?after="}}
            return self._json(page)
        if parts[:4] == ["crm", "v3", "objects", "tasks"] and request.method == "POST":
            if parts[4:] == ["batch", "create"]:
                return self._create_tasks(body or {})
            if parts[4:] == ["batch", "update"]:
                return self._update_tasks(body or {})
        if parts[:3] != ["crm", "v3", "objects"] or len(parts) not in (5, 6):
            return self._error(404)
        kind = parts[3]
        if kind not in OBJECT_TYPES:
            return self._error(404)
        if len(parts) == 6:
            if request.method == "POST" and parts[4] == "batch" and parts[5] in ("read", "update"):
                return self._batch(kind, parts[5], body or {})
            return self._error(404)
        if request.method == "POST" and parts[4] == "search":
            return self._search(kind, body)
        record_id = parts[4]
        record = self.records(kind).get(record_id)
        if record is None:
            return self._error(404)
        if request.method == "GET":
            return self._json(self._object(record_id, record, self._wanted(request)))
        if request.method == "PATCH":
            problem = self._invalid(body.get("properties") or {})
            if problem:
                return self._json(problem, 400)
            record.update(body["properties"])
            return self._json(self._object(record_id, record, list(body["properties"])))
        return self._error(404)

    def _invalid(self, properties: dict[str, Any]) -> dict | None:
        owner = properties.get("hubspot_owner_id")
        if owner and owner not in {o["id"] for o in self.owners}:
            return {
                "status": "error",
                "message": f"Property values were not valid: {owner} is not a valid owner id",
                "correlationId": "0000-test",
                "category": "VALIDATION_ERROR",
            }
        return None

    def _search(self, kind: str, body: dict[str, Any]) -> Response:
        # Operators and limits as documented: EQ/NEQ/GT/GTE/LT/LTE, at most 200 a page and
        # 10,000 results per query (paging past that answers 400).
        start, limit = int(body.get("after") or 0), int(body.get("limit") or 10)
        if limit > 200:
            return self._json(_search_error("limit must be at most 200"), 400)
        if start + limit > 10_000:
            return self._json(_search_error("Search results are limited to 10,000"), 400)
        groups = body.get("filterGroups") or [{"filters": []}]
        records = self.records(kind)
        found = [
            cid
            for cid, props in sorted(records.items())
            if any(all(_matches(props, f) for f in g["filters"]) for g in groups)
        ]
        for sort in reversed(body.get("sorts") or []):
            name = sort if isinstance(sort, str) else sort["propertyName"]
            descending = isinstance(sort, dict) and sort.get("direction") == "DESCENDING"
            found.sort(key=lambda cid, n=name: _sortable(records[cid].get(n)),
                       reverse=descending)  # fmt: skip
        chunk = found[start : start + limit]
        wanted = body.get("properties") or []
        page: dict[str, Any] = {
            "total": len(found),
            "results": [self._object(cid, records[cid], wanted) for cid in chunk],
        }
        if start + limit < len(found):
            page["paging"] = {"next": {"after": str(start + limit)}}
        return self._json(page)

    def _complete_batch(self, body: dict[str, Any]) -> Response:
        inputs = body.get("inputs") or []
        if not inputs or len(inputs) > CALLBACK_BATCH_LIMIT:
            return self._json(_search_error(f"inputs: 1 to {CALLBACK_BATCH_LIMIT} expected"), 400)
        for item in inputs:
            if not item.get("callbackId") or not isinstance(item.get("outputFields"), dict):
                return self._json(_search_error("callbackId and outputFields required"), 400)
            if any(not isinstance(v, str) for v in item["outputFields"].values()):
                return self._json(_search_error("outputFields values must be strings"), 400)
            if item["callbackId"] in self.expired_callbacks:
                return self._json(_search_error(f"unknown callback {item['callbackId']}"), 400)
        with self._lock:
            self.batch_completed.extend(inputs)
        return Response(status=204)

    def _batch(self, kind: str, action: str, body: dict[str, Any]) -> Response:
        inputs = body.get("inputs", [])
        ids = [str(item["id"]) for item in inputs]
        if len(inputs) > BATCH_LIMIT or len(set(ids)) != len(ids):
            # HubSpot refuses a batch of more than 100, or naming one record twice, whole.
            return self._json(_search_error("too many inputs, or duplicate IDs"), 400)
        if action == "update":
            for item in inputs:
                problem = self._invalid(item.get("properties") or {})
                if problem:  # a bad value refuses the whole batch (no 207 for it)
                    return self._json(problem, 400)
        results, errors = [], []
        for item in inputs:
            contact = self.records(kind).get(str(item["id"]))
            if contact is None:
                errors.append(
                    {
                        "status": "error",
                        "category": "OBJECT_NOT_FOUND",
                        "message": f"Could not get some {OBJECT_TYPES[kind]} objects, they may "
                        "be deleted.",
                        "context": {"ids": [str(item["id"])]},
                        "links": {},
                        "errors": [],
                    }  # fmt: skip
                )
                continue
            if action == "update":
                contact.update(item.get("properties") or {})
                wanted = list(item.get("properties") or {})
            else:
                wanted = body.get("properties") or []
            results.append(self._object(str(item["id"]), contact, wanted))
        answer: dict[str, Any] = {
            "status": "COMPLETE", "results": results, "startedAt": STAMP, "completedAt": STAMP,
        }  # fmt: skip
        if errors:
            answer.update(errors=errors, numErrors=len(errors))
        return self._json(answer, 207 if errors else 200)

    def tasks_of(self, object_id: str) -> list[dict[str, Any]]:
        """The tasks associated with a record, oldest first."""
        return [t for t in self.tasks.values() if any(a["to"] == object_id for a in t["assoc"])]

    def _create_tasks(self, body: dict[str, Any]) -> Response:
        # POST /crm/v3/objects/tasks/batch/create: 201 with the created tasks, each echoing
        # its input's objectWriteTraceId; an invalid input refuses the whole batch (400).
        inputs = body.get("inputs") or []
        if not inputs or len(inputs) > BATCH_LIMIT:
            return self._json(_search_error(f"inputs: 1 to {BATCH_LIMIT} expected"), 400)
        made = []
        for item in inputs:
            props = item.get("properties") or {}
            if any(not isinstance(v, str) for v in props.values()) or "hs_timestamp" not in props:
                return self._json(_search_error("hs_timestamp required; values as strings"), 400)
            problem = self._invalid(props)
            if problem:
                return self._json(problem, 400)
            assoc = []
            for link in item.get("associations") or []:
                for kind in link.get("types") or []:
                    if kind.get("associationCategory") != "HUBSPOT_DEFINED":
                        return self._json(_search_error("unknown association category"), 400)
                    assoc.append({"to": str(link["to"]["id"]), "typeId": kind["associationTypeId"]})
            made.append((item, props, assoc))
        results = []
        with self._lock:
            for item, props, assoc in made:
                task_id = str(next(self._ids) + 90_000_000)
                self.tasks[task_id] = {"id": task_id, "properties": dict(props), "assoc": assoc}
                result = self._object(task_id, props, [])
                if item.get("objectWriteTraceId") is not None:
                    result["objectWriteTraceId"] = item["objectWriteTraceId"]
                results.append(result)
        answer = {"status": "COMPLETE", "results": results, "startedAt": STAMP,
                  "completedAt": STAMP}  # fmt: skip
        return self._json(answer, 201)

    def _update_tasks(self, body: dict[str, Any]) -> Response:
        inputs = body.get("inputs") or []
        ids = [str(item["id"]) for item in inputs]
        if not inputs or len(inputs) > BATCH_LIMIT or len(set(ids)) != len(ids):
            return self._json(_search_error("too many inputs, or duplicate IDs"), 400)
        results, errors = [], []
        with self._lock:
            for item in inputs:
                task = self.tasks.get(str(item["id"]))
                if task is None:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "message": "Could not get some TASK objects.",
                                   "context": {"ids": [str(item["id"])]}})  # fmt: skip
                    continue
                task["properties"].update(item.get("properties") or {})
                results.append(self._object(task["id"], task["properties"], []))
        answer: dict[str, Any] = {"status": "COMPLETE", "results": results, "startedAt": STAMP,
                                  "completedAt": STAMP}  # fmt: skip
        if errors:
            answer.update(errors=errors, numErrors=len(errors))
        return self._json(answer, 207 if errors else 200)

    def _definitions(self, request: Request, body: Any) -> Response:
        parts = request.path.strip("/").split("/")  # automation v4 actions {app} [{definition}]
        app = parts[3]
        defs = self.definitions.setdefault(app, [])
        if len(parts) == 4 and request.method == "GET":
            return self._json({"results": defs})
        if len(parts) == 4 and request.method == "POST":
            created = {**body, "id": str(next(self._ids)), "revisionId": "1"}
            defs.append(created)
            return self._json(created)
        found = next((d for d in defs if d["id"] == parts[4]), None) if len(parts) == 5 else None
        if found is None:
            return self._error(404)
        if request.method == "PATCH":
            found.update(body)
            found["revisionId"] = str(int(found["revisionId"]) + 1)
        return self._json(found)


def _sortable(value: Any) -> tuple[int, float, str]:
    text = "" if value is None else str(value)
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text)


def _matches(props: dict[str, Any], flt: dict[str, Any]) -> bool:
    value, wanted = props.get(flt["propertyName"]), flt.get("value")
    operator = flt.get("operator", "EQ")
    if operator == "EQ":
        return str(value) == str(wanted)
    if operator == "NEQ":
        return str(value) != str(wanted)
    if value is None or value == "":
        return False
    mine, theirs = _sortable(value), _sortable(wanted)
    return {
        "GT": mine > theirs, "GTE": mine >= theirs, "LT": mine < theirs, "LTE": mine <= theirs,
    }[operator]  # fmt: skip


def _search_error(message: str) -> dict[str, Any]:
    return {"status": "error", "message": message, "correlationId": "0000-test",
            "category": "VALIDATION_ERROR"}  # fmt: skip


def start_fake(**state: Any) -> FakeHubSpot:
    """A started fake (for the benchmark, or tests that manage their own lifetime)."""
    return FakeHubSpot(**state).start()


@pytest.fixture
def fake_hubspot(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    """A running fake HubSpot; ``HUBSPOT_API_BASE`` and ``HUBSPOT_ACCESS_TOKEN`` point at it."""
    fake = start_fake()
    monkeypatch.setenv("HUBSPOT_API_BASE", fake.url)
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", fake.token)
    yield fake
    fake.stop()
