"""What the CRMs send leadrelay, built as they build it: HubSpot's signed workflow-action
executions (signature v3) and Salesforce's Outbound Messages (SOAP 1.1)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

OUTBOUND_FIELDS = (
    "Id", "OwnerId", "FirstName", "LastName", "Email", "Company", "Country",
    "NumberOfEmployees", "LeadSource", "Status",
)  # fmt: skip


@dataclass(frozen=True)
class Request:
    """One HTTP request to send: where, what, with which headers."""

    url: str
    body: bytes
    headers: dict[str, str]


def hubspot_execution(
    url: str,
    secret: str,
    *,
    callback_id: str,
    portal_id: str,
    contact_id: str,
    properties: Mapping[str, str],
    now_ms: int | None = None,
) -> Request:
    """A workflow action execution as HubSpot POSTs it, signed with v3: base64 of
    HMAC-SHA256(client secret, method + URL + body + timestamp). A redelivery is signed anew."""
    payload = {
        "callbackId": callback_id,
        "origin": {"portalId": int(portal_id), "actionDefinitionId": 10860211,
                   "actionDefinitionVersion": 1},
        "context": {"source": "WORKFLOWS", "workflowId": 192814114},
        "object": {"objectId": int(contact_id), "objectType": "CONTACT",
                   "properties": dict(properties)},
        "inputFields": {"overwrite_owner": "false"},
    }  # fmt: skip
    body = json.dumps(payload)
    timestamp = str(now_ms if now_ms is not None else int(time.time() * 1000))
    digest = hmac.new(
        secret.encode(), f"POST{url}{body}{timestamp}".encode(), hashlib.sha256
    ).digest()
    headers = {
        "Content-Type": "application/json",
        "X-HubSpot-Signature-v3": base64.b64encode(digest).decode(),
        "X-HubSpot-Request-Timestamp": timestamp,
        "User-Agent": "HubSpot Connect 2.0 (leadrelay sandbox)",
    }
    return Request(url, body.encode(), headers)


def _field(name: str, value: Any) -> str:
    if value is None or value == "":
        return f'<sf:{name} xsi:nil="true"/>'
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return f"<sf:{name}>{escape(text)}</sf:{name}>"


def outbound_message(
    url: str,
    *,
    org_id: str,
    action_id: str,
    instance_url: str,
    notifications: list[tuple[str, Mapping[str, Any]]],
) -> Request:
    """An Outbound Message as Salesforce POSTs it: one ``Notification`` (id, Lead fields) per
    item. No session id (Salesforce stopped sending one in 2026) and no signature."""
    items = "".join(
        f"<Notification><Id>{escape(nid)}</Id>"
        '<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        + "".join(_field(name, lead.get(name)) for name in OUTBOUND_FIELDS)
        + "</sObject></Notification>"
        for nid, lead in notifications
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"'
        ' xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        '<soapenv:Body><notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{escape(org_id)}</OrganizationId>"
        f"<ActionId>{escape(action_id)}</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"<EnterpriseUrl>{escape(instance_url)}/services/Soap/c/59.0/{org_id[:15]}</EnterpriseUrl>"
        f"<PartnerUrl>{escape(instance_url)}/services/Soap/u/59.0/{org_id[:15]}</PartnerUrl>"
        f"{items}</notifications></soapenv:Body></soapenv:Envelope>"
    )
    headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
    return Request(url, body.encode(), headers)
