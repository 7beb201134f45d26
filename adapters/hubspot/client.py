"""The few calls leadrelay makes to HubSpot's CRM API, through hubspot-api-client.

Every call goes through ``hubspot_limits.call``: one rate limiter per ``HubSpotApi`` (build one
per process and share it between threads), retries that end by a deadline, and errors turned
into ``CrmError``. Nothing here logs a token.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import hubspot
from hubspot.automation.actions import (
    BatchInputCallbackCompletionBatchRequest,
    CallbackCompletionBatchRequest,
)
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInput,
    SimplePublicObjectBatchInput,
    SimplePublicObjectInput,
)
from urllib3.util import Retry

from adapters.hubspot.contact import API_BASE_ENV, COMPANY_PROPERTY, OWNER_PROPERTY
from adapters.hubspot.limits import RateLimiter, RetryPolicy, call, read_pause
from adapters.hubspot.objects import CONTACT, hubspot_object, written_as
from adapters.hubspot.pause import Pause
from workflows.config import Config
from workflows.delivery import OwnerWriter
from workflows.errors import CrmError, LeadRelayError
from workflows.model import Decision, Lead
from workflows.store import SharedValues, Store
from workflows.store_registry import open_shared_values

BATCH_LIMIT = 100  # HubSpot's batch endpoints take at most 100 inputs
# The batch callback completion's limit is not stated on its reference page; 100 is HubSpot's
# limit for its batch endpoints, and a batch of 100 keeps a flush at two calls per 100.
CALLBACK_BATCH_LIMIT = 100
# Seconds every HubSpot call made for one action request may take together: with the store's
# commit and the answer itself, HubSpot hears back within 5 s whatever the load.
ACTION_BUDGET = 4.0
T = TypeVar("T")
_BUDGET = "hubspot-"  # the store's shared values named hubspot-<digest>.budget


def api_base(config: Config) -> str:
    """``$HUBSPOT_API_BASE``, else ``hubspot.api_base`` from app.yaml."""
    return (os.environ.get(API_BASE_ENV) or config.hubspot.api_base).rstrip("/")


def budget_limiter(config: Config, token: str, store: Callable[[], Store]) -> RateLimiter:
    """The limiter of ``token``'s API budget (``hubspot.max_calls_per_10s``).

    Its bucket is a value the store shares (``store()`` is asked at the first call), so every
    process serving that store (gunicorn workers, their sweepers, a CLI sweep) spends one
    budget together. The value is named by a hash of the API base and token: one bucket per
    portal app, and no secret on disk.
    """
    per_second = config.hubspot.max_calls_per_10s / 10
    digest = hashlib.sha256(f"{api_base(config)}\n{token}".encode()).hexdigest()[:16]
    name = f"{_BUDGET}{digest}.budget"
    return RateLimiter(
        per_second=per_second,
        burst=max(1, int(per_second * 2)),
        shared=lambda: store().shared_value(name),
    )


def _budgets(store: SharedValues) -> list[str]:
    """Every HubSpot budget the store holds: one per API base and token ever used."""
    return [name for name in store.shared_names(_BUDGET) if name.endswith(".budget")]


def pause_warnings(config: Config) -> list[str]:
    """What ``leadrelay check`` says about pauses in force in the shared budget."""
    try:
        store = open_shared_values(config.store_url)
    except LeadRelayError:
        return []  # ``check`` says what is wrong with the store URL itself
    warnings = []
    try:
        for name in _budgets(store):
            try:
                with store.shared_value(name) as value:
                    pause = read_pause(value)
            except OSError as exc:
                where = exc.filename or name
                warnings.append(f"cannot read the HubSpot budget file {where}: {exc.strerror}")
                continue
            if pause is not None:
                warnings.append(f"{pause.describe()}; `leadrelay hubspot resume` lifts the pause")
    finally:
        store.close()
    return warnings


def resume_budgets(config: Config) -> list[tuple[str, Pause]]:
    """Lift every pause in the shared budgets: (the budget's file name, the pause it lifted).

    OSError (its ``filename`` says where) when a budget cannot be changed.
    """
    store = open_shared_values(config.store_url)
    lifted = []
    try:
        for name in _budgets(store):
            with store.shared_value(name) as value:
                where = Path(value.where).name
            pause = RateLimiter(shared=partial(store.shared_value, name)).resume()
            if pause is not None:
                lifted.append((where, pause))
    finally:
        store.close()
    return lifted


@dataclass(frozen=True)
class AccountOwner:
    """A contact's account owner (its company's owner), or ``missing``: why it has none."""

    owner: str | None
    missing: str | None = None


@dataclass(frozen=True)
class Owner:
    """A HubSpot owner: ``id`` goes into ``hubspot_owner_id`` (never ``user_id``)."""

    id: str
    email: str | None
    name: str
    user_id: str | None
    archived: bool = False


class HubSpotApi:
    """HubSpot's CRM API for one access token, inside a rate and time budget."""

    def __init__(
        self,
        *,
        access_token: str,
        host: str,
        limiter: RateLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        # Our own loop retries (shared limiter, deadline); urllib3 must not retry underneath.
        client = hubspot.Client.create(access_token=access_token, host=host, retry=Retry(0))
        # Each attribute access builds a new API client and connection pool: build them once.
        self._contacts = client.crm.contacts.basic_api
        self.contacts_batch = client.crm.contacts.batch_api  # public: the sweep reads in batches
        self.contacts_search = client.crm.contacts.search_api  # public: reassign searches
        self._companies = client.crm.companies.basic_api
        # Companies, deals and tickets: crm/v3/objects/{type}, the same calls as contacts'.
        self.objects_basic = client.crm.objects.basic_api
        self.objects_batch = client.crm.objects.batch_api
        self.objects_search = client.crm.objects.search_api
        self._owners = client.crm.owners.owners_api
        self._callbacks = client.automation.actions.callbacks_api
        self.tasks_batch = client.crm.objects.tasks.batch_api  # follow-up tasks (tasks.py)
        self.limiter = limiter or RateLimiter()
        self.policy = policy or RetryPolicy()

    def for_action(self, budget_wait: float) -> HubSpotApi:
        """This client (same connections, same budget) paced for answering HubSpot: every
        call made for one request ends within ``ACTION_BUDGET`` s, and none waits longer
        than ``budget_wait`` s for a token (BudgetExhausted instead: answer 429)."""
        policy = replace(self.policy, budget=ACTION_BUDGET, budget_wait=budget_wait)
        if policy == self.policy:
            return self
        paced = copy.copy(self)
        paced.policy = policy
        return paced

    def deadline(self) -> float:
        """A deadline for the calls made while answering one request."""
        return time.monotonic() + self.policy.budget

    def _call(self, do: Callable[[tuple[float, float]], T], what: str, deadline: float) -> T:
        return call(do, what, limiter=self.limiter, deadline=deadline, policy=self.policy)

    def call(self, do: Callable[[tuple[float, float]], T], what: str, deadline: float) -> T:
        """``do(timeout)`` on this client's budget and retry policy, ending by ``deadline``
        (for the other modules of this adapter that call HubSpot)."""
        return self._call(do, what, deadline)

    def read_contact(
        self, contact_id: str, properties: Sequence[str], deadline: float
    ) -> dict[str, Any]:
        """The contact's ``properties`` in one call (missing values come back as None)."""
        found = self._call(
            lambda timeout: self._contacts.get_by_id(
                contact_id, properties=list(properties), _request_timeout=timeout
            ),
            f"reading contact {contact_id}",
            deadline,
        )
        return dict(found.properties or {})

    def read_object(
        self, kind: str, object_id: str, properties: Sequence[str], deadline: float
    ) -> dict[str, Any]:
        """A record's ``properties`` (``kind``: contact, company, deal, ticket) in one call."""
        obj = hubspot_object(kind)
        if obj is CONTACT:
            return self.read_contact(object_id, properties, deadline)
        found = self._call(
            lambda timeout: self.objects_basic.get_by_id(
                obj.path, object_id, properties=list(properties), _request_timeout=timeout
            ),
            f"reading {kind} {object_id}",
            deadline,
        )
        return dict(found.properties or {})

    def company_owner(self, company_id: str, deadline: float) -> str | None:
        """The owner id of a company (the contact's account owner), or None."""
        found = self._call(
            lambda timeout: self._companies.get_by_id(
                company_id, properties=[OWNER_PROPERTY], _request_timeout=timeout
            ),
            f"reading company {company_id}",
            deadline,
        )
        return (found.properties or {}).get(OWNER_PROPERTY) or None

    def account_owner(self, properties: dict[str, Any], deadline: float) -> str | None:
        """The owner of the contact's primary company, when it has one."""
        return self.find_account_owner(properties, deadline).owner

    def find_account_owner(self, properties: dict[str, Any], deadline: float) -> AccountOwner:
        """The owner of the contact's primary company, or why there is none.

        A company HubSpot no longer has (deleted, or merged into another) is no account owner:
        the rule's ``else:`` decides then. Other failures (429, 5xx) stay errors to retry.
        """
        company = str(properties.get(COMPANY_PROPERTY) or "").strip()
        if not company:
            return AccountOwner(None, "the contact has no associated company")
        try:
            owner = self.company_owner(company, deadline)
        except CrmError as exc:
            if exc.status != 404:
                raise
            return AccountOwner(None, f"company {company} not found")
        return AccountOwner(owner, None if owner else f"company {company} has no owner")

    def write_owners(
        self, batch: Sequence[tuple[Lead, Decision]], deadline: float
    ) -> dict[str, CrmError | None]:
        """Set ``hubspot_owner_id`` on each record: one call for one, else one batch call per
        object type per 100 (a batch may mix contacts, deals...)."""
        if len(batch) == 1:
            lead, decision = batch[0]
            obj = written_as(lead.object_type)
            update = SimplePublicObjectInput(properties={OWNER_PROPERTY: decision.owner_crm_id})
            self._call(
                lambda timeout: self._update_one(obj.kind, lead.id, update, timeout),
                f"setting the owner of {obj.kind} {lead.id}",
                deadline,
            )
            return {lead.id: None}
        outcome: dict[str, CrmError | None] = {}
        by_kind: dict[str, list[tuple[Lead, Decision]]] = {}
        for lead, decision in batch:
            by_kind.setdefault(written_as(lead.object_type).kind, []).append((lead, decision))
        for same_kind in by_kind.values():
            for start in range(0, len(same_kind), BATCH_LIMIT):
                chunk = same_kind[start : start + BATCH_LIMIT]
                outcome.update(self._write_chunk(chunk, deadline))
        return outcome

    def _update_one(
        self, kind: str, object_id: str, update: SimplePublicObjectInput, timeout: Any
    ) -> Any:
        obj = hubspot_object(kind)
        if obj is CONTACT:
            return self._contacts.update(object_id, update, _request_timeout=timeout)
        return self.objects_basic.update(obj.path, object_id, update, _request_timeout=timeout)

    def _update_batch(
        self, kind: str, body: BatchInputSimplePublicObjectBatchInput, timeout: Any
    ) -> Any:
        # The raw answer (_preload_content=False): see set_owners.
        obj = hubspot_object(kind)
        if obj is CONTACT:
            return self.contacts_batch.update(
                body, _request_timeout=timeout, _preload_content=False
            )
        return self.objects_batch.update(
            obj.path, body, _request_timeout=timeout, _preload_content=False
        )

    def _write_chunk(
        self, chunk: Sequence[tuple[Lead, Decision]], deadline: float
    ) -> dict[str, CrmError | None]:
        pairs = [(lead.id, decision.owner_crm_id or "") for lead, decision in chunk]
        return self.set_owners(pairs, deadline, written_as(chunk[0][0].object_type).kind)

    def set_owners(
        self, owners: Sequence[tuple[str, str]], deadline: float, kind: str = "contact"
    ) -> dict[str, CrmError | None]:
        """Set ``hubspot_owner_id`` of up to 100 (record id, owner id) of one object ``kind``
        in one batch call; per record: None when written, else why not. A record HubSpot
        refuses (deleted, merged away, an owner it does not know) fails alone, for good; a
        failed call fails every record in it (retryable when a retry may help)."""
        obj = hubspot_object(kind)
        # Each model copies a default configuration unless handed one (a tenth of a
        # millisecond apiece, most of it in logging): hand them the client's own.
        same = self.contacts_batch.api_client.configuration
        inputs = [
            SimplePublicObjectBatchInput(
                id=contact, properties={OWNER_PROPERTY: owner}, local_vars_configuration=same
            )
            for contact, owner in owners
        ]
        try:
            # The raw answer: the generated models would parse two timestamps per contact
            # with dateutil, most of a flush's CPU, for the ids alone that are read here.
            body = BatchInputSimplePublicObjectBatchInput(inputs=inputs)
            raw = self._call(
                lambda timeout: self._update_batch(obj.kind, body, timeout),
                f"setting the owners of {len(owners)} {obj.path}",
                deadline,
            )
        except CrmError as exc:
            return {contact: exc for contact, _ in owners}
        try:
            data = raw.data
        finally:
            raw.release_conn()  # unread answers hold their connection
        try:
            answer = json.loads(data)
            written = {str(result["id"]) for result in answer.get("results") or ()}
            errors = [(e.get("message"), (e.get("context") or {}).get("ids") or [])
                      for e in answer.get("errors") or ()]  # fmt: skip
        except (ValueError, TypeError, KeyError, AttributeError):
            unreadable = CrmError("HubSpot answered the owner update in an unexpected shape",
                                  retryable=True)  # fmt: skip
            return {contact: unreadable for contact, _ in owners}
        refused: dict[str, CrmError] = {}
        for message, ids in errors:  # a 207 names the ids it refused
            for contact_id in ids:
                refused[str(contact_id)] = CrmError(
                    f"HubSpot refused the owner of {obj.kind} {contact_id}: {message}",
                    retryable=False,
                )
        unconfirmed = CrmError("HubSpot did not confirm the owner update", retryable=True)
        return {
            contact: None if contact in written else refused.get(contact, unconfirmed)
            for contact, _ in owners
        }

    def complete_callbacks(
        self, completions: Sequence[tuple[str, dict[str, str]]], deadline: float
    ) -> None:
        """Complete up to ``CALLBACK_BATCH_LIMIT`` blocked executions (callback id, output
        fields) in one call; CrmError when HubSpot refuses or fails the call."""
        same = self._callbacks.api_client.configuration
        inputs = [
            CallbackCompletionBatchRequest(
                callback_id=callback, output_fields=fields, local_vars_configuration=same
            )
            for callback, fields in completions
        ]
        self._call(
            lambda timeout: self._callbacks.complete_batch(
                BatchInputCallbackCompletionBatchRequest(inputs=inputs), _request_timeout=timeout
            ),
            f"completing {len(completions)} workflow executions",
            deadline,
        )

    def owner_writer(self, deadline: float) -> OwnerWriter:
        """``write_owners`` bound to a deadline, in the shape ``deliver`` takes."""
        return lambda batch: self.write_owners(batch, deadline)

    def _owner_page(self, after: str | None) -> Callable[[tuple[float, float]], Any]:
        """The call for one page of owners, starting ``after`` a paging cursor."""
        extra = {"after": after} if after else {}
        return lambda timeout: self._owners.get_page(limit=100, _request_timeout=timeout, **extra)

    def owners(self) -> list[Owner]:
        """Every active owner of the portal, paging through 100 at a time."""
        owners: list[Owner] = []
        after: str | None = None
        while True:
            page = self._call(self._owner_page(after), "listing owners", self.deadline())
            for found in page.results or ():
                name = " ".join(x for x in (found.first_name, found.last_name) if x)
                user_id = str(found.user_id) if found.user_id is not None else None
                owners.append(
                    Owner(str(found.id), found.email, name, user_id, bool(found.archived))
                )
            nxt = page.paging.next if page.paging else None
            after = nxt.after if nxt else None
            if not after:
                return owners
