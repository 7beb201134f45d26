"""The account owner of Salesforce records, for ``account_owner`` rules: one SOQL query a batch.

A record that carries ``AccountId`` (a contact, a case, an opportunity) gets the owner of that
Account. A Lead has no account yet: it gets the owner of the Account whose ``Website`` names the
lead's email domain. Website is free text, so both sides are reduced to a bare host first
(``https://www.Acme.com/about`` and ``acme.com`` are both ``acme.com``); Salesforce is asked
only for candidates (``Website LIKE '%acme.com%'``) and the exact host is matched here.

The rules, as docs/salesforce.md gives them to admins: a free-mail domain (gmail.com) matches
no account; subdomains are their own hosts (``eu.acme.com`` is not ``acme.com``); several
accounts with the same host and the same owner give that owner, with different owners none
(the rule's ``else:`` decides, and the reason names the accounts). A deleted Account is not
returned by ``query_all`` without ``queryAll``, so it is no owner either.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from simple_salesforce.api import Salesforce
from simple_salesforce.format import format_soql

from adapters.salesforce.errors import CALL_ERRORS, crm_error
from adapters.salesforce.ids import is_id
from workflows.config import Config
from workflows.crm_ids import id_key
from workflows.deciding import FREE_MAIL_DOMAINS
from workflows.model import Lead

ACCOUNT_FIELD = "AccountId"  # on contacts, cases and opportunities (kept in ``raw``)
# Ids and domains per query: 200 ids keep it near 5,000 characters, 100 domains (a whole
# outbound message) well under SOQL's 100,000 even at the longest host names.
IDS_PER_QUERY = 200
DOMAINS_PER_QUERY = 100
MAX_HOST = 253


def needs_account_owner(config: Config) -> bool:
    """Whether any target is ``account_owner`` or any rule compares ``account_owner``."""
    if any(target.kind == "account_owner" for target in config.targets()):
        return True
    rules = list(config.flow.rules)
    while rules:
        rule = rules.pop()
        if _mentions(rule.when, "account_owner"):
            return True
        rules.extend(rule.flow.rules if rule.flow is not None else ())
    return False


def _mentions(spec: Any, name: str) -> bool:
    if isinstance(spec, Mapping):
        return any(key == name or _mentions(value, name) for key, value in spec.items())
    if isinstance(spec, (list, tuple)):
        return any(_mentions(item, name) for item in spec)
    return False


def website_host(website: str | None) -> str | None:
    """``Website`` as a bare lower-case host: no scheme, ``www.``, port, path or query."""
    text = (website or "").strip().lower()
    if not text:
        return None
    try:
        host = urlsplit(text if "://" in text else f"//{text}").hostname
    except ValueError:  # an unbalanced "[" reads as a broken IPv6 address
        return None
    host = (host or "").rstrip(".").removeprefix("www.")
    return host or None


def no_account_owners(leads: Sequence[Lead], why: str) -> None:
    """Mark every record as having no account owner, for ``why`` (the rules' ``else:``)."""
    for lead in leads:
        _set(lead, None, why)


def fill_account_owners(sf: Salesforce, leads: Sequence[Lead]) -> None:
    """Set ``account_owner`` (or ``account_owner_missing``, why none) on each record: one
    query for those with an ``AccountId``, one for the leads' email domains. CrmError when
    Salesforce fails (nothing is set then: the delivery is retried whole)."""
    by_account = [lead for lead in leads if lead.raw.get(ACCOUNT_FIELD)]
    by_domain = [lead for lead in leads if not lead.raw.get(ACCOUNT_FIELD)]
    owners = _owners_by_id(sf, {str(lead.raw[ACCOUNT_FIELD]) for lead in by_account})
    hosts = _accounts_by_host(sf, {d for lead in by_domain if (d := _lead_host(lead))})
    for lead in by_account:
        account = str(lead.raw[ACCOUNT_FIELD])
        owner = owners.get(id_key("salesforce", account)) if is_id(account, "001") else None
        _set(lead, owner, f"account {account} not found (deleted, or not an account id)")
    for lead in by_domain:
        _set(lead, *_match(lead, hosts))


def _set(lead: Lead, owner: str | None, missing: str) -> None:
    lead.account_owner = owner
    lead.account_owner_missing = None if owner else missing


def _lead_host(lead: Lead) -> str | None:
    host = website_host(lead.domain)
    # No host name is longer than 253 characters: a longer "domain" is no query's business.
    if host is None or host in FREE_MAIL_DOMAINS or len(host) > MAX_HOST:
        return None
    return host


def _match(lead: Lead, hosts: Mapping[str, list[tuple[str, str]]]) -> tuple[str | None, str]:
    """The owner of the one account (or several with one owner) at the lead's host."""
    if not lead.domain:
        return None, "the lead has no email domain to match an account's Website"
    host = _lead_host(lead)
    if host is None:
        if website_host(lead.domain) in FREE_MAIL_DOMAINS:
            return None, f"{lead.domain} is a free-mail domain: it names no account"
        return None, "the lead's email domain is not a host name"
    accounts = hosts.get(host, [])
    owners = {owner for _, owner in accounts}
    if len(owners) == 1:
        return owners.pop(), ""
    if not accounts:
        return None, f"no account has the website {host}"
    names = ", ".join(sorted(account for account, _ in accounts))
    return None, f"{len(accounts)} accounts have the website {host} with different owners ({names})"


def _owners_by_id(sf: Salesforce, account_ids: Iterable[str]) -> dict[str, str]:
    ids = sorted(a for a in account_ids if is_id(a, "001"))  # only ids go into the query
    owners: dict[str, str] = {}
    for start in range(0, len(ids), IDS_PER_QUERY):
        chunk = ids[start : start + IDS_PER_QUERY]
        soql = format_soql("SELECT Id, OwnerId FROM Account WHERE Id IN {ids}", ids=chunk)
        for row in _rows(sf, soql, f"reading {len(chunk)} accounts"):
            if row.get("OwnerId"):
                owners[id_key("salesforce", str(row["Id"]))] = str(row["OwnerId"])
    return owners


def _accounts_by_host(sf: Salesforce, hosts: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    wanted = sorted(hosts)
    found: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for start in range(0, len(wanted), DOMAINS_PER_QUERY):
        chunk = wanted[start : start + DOMAINS_PER_QUERY]
        # LIKE narrows the candidates (case-insensitive); the exact host is matched below.
        where = " OR ".join(format_soql("Website LIKE '%{:like}%'", host) for host in chunk)
        soql = f"SELECT Id, OwnerId, Website FROM Account WHERE {where}"
        for row in _rows(sf, soql, f"finding accounts by website for {len(chunk)} domains"):
            host = website_host(row.get("Website"))
            if host is not None and host in chunk and row.get("OwnerId"):
                found[host].append((str(row["Id"]), str(row["OwnerId"])))
    return found


def _rows(sf: Salesforce, soql: str, doing: str) -> list[dict[str, Any]]:
    try:
        return [dict(row) for row in sf.query_all(soql).get("records") or ()]
    except CALL_ERRORS as exc:
        raise crm_error(exc, doing) from None
