"""Read a Salesforce Outbound Message (SOAP 1.1) into notification ids and records; answer it.

A message carries one object type (the rule it belongs to is set on one): Lead, Contact,
Account, Opportunity or Case, each read into a ``Lead`` of that ``object_type``.

The body is untrusted XML: defusedxml refuses DTDs, entity declarations and external
references before anything is expanded, so XXE and billion-laughs payloads fail fast. The
structure is checked strictly; every problem is a ``LeadError`` naming the element.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError
from xml.sax.saxutils import escape

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from adapters.salesforce.ids import is_id
from adapters.salesforce.lead import record_from_fields
from adapters.salesforce.objects import BY_SOBJECT, SOBJECT_NAMES
from workflows.errors import LeadError
from workflows.model import Lead

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100  # Salesforce sends 1 to 100 per message

ACK = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
    "  <soapenv:Body>\n"
    '    <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">\n'
    "      <Ack>true</Ack>\n"
    "    </notificationsResponse>\n"
    "  </soapenv:Body>\n"
    "</soapenv:Envelope>\n"
)


@dataclass(frozen=True)
class Notification:
    """One notification: its id (Salesforce's dedupe key) and the record it carries."""

    id: str
    lead: Lead


@dataclass(frozen=True)
class OutboundMessage:
    """What leadrelay uses of a message. SessionId and the API URLs are ignored on purpose:
    leadrelay signs in with its own credentials and never calls a URL a request names."""

    organization_id: str
    action_id: str
    notifications: tuple[Notification, ...]


def parse_outbound_message(body: bytes) -> OutboundMessage:
    """Parse and check a whole message; LeadError on anything unexpected (nothing is kept)."""
    try:
        root = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise LeadError("body", f"refused XML: {type(exc).__name__}") from None
    except (ParseError, ValueError, LookupError) as exc:
        # expat decodes with whatever codec the XML declaration names: an unknown one is a
        # LookupError, a binary codec (rot13, zlib) a LookupError, a multi-byte one or bytes
        # it cannot decode a ValueError. All are the sender's mistake, never ours.
        raise LeadError("body", f"not well-formed XML: {exc}") from None
    if root.tag != f"{{{SOAP_NS}}}Envelope":
        raise LeadError("Envelope", f"expected a SOAP 1.1 envelope, got {_local(root.tag)}")
    notifications = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    if notifications is None:
        raise LeadError("notifications", "no outbound notifications in the SOAP body")
    org_id = _text(notifications, "OrganizationId")
    if not is_id(org_id, "00D"):
        raise LeadError("OrganizationId", "missing or not an organization id")
    items = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
    if not 1 <= len(items) <= MAX_NOTIFICATIONS:
        raise LeadError("Notification", f"expected 1 to {MAX_NOTIFICATIONS}, got {len(items)}")
    parsed = tuple(_notification(item, number) for number, item in enumerate(items))
    return OutboundMessage(str(org_id), _text(notifications, "ActionId") or "", parsed)


def _notification(item: Element, number: int) -> Notification:
    where = f"Notification[{number}]"
    notification_id = _text(item, "Id")
    if not notification_id or not is_id(notification_id):
        raise LeadError(f"{where}.Id", "missing or not a Salesforce id")
    sobject = item.find(f"{{{OUTBOUND_NS}}}sObject")
    if sobject is None:
        raise LeadError(f"{where}.sObject", "missing")
    # xsi:type is "sf:Case"; ElementTree keeps no prefixes, so compare the local name.
    kind = sobject.get(f"{{{XSI_NS}}}type", "").rpartition(":")[2]
    obj = BY_SOBJECT.get(kind)
    if obj is None:
        raise LeadError(
            f"{where}.sObject", f"leadrelay routes {SOBJECT_NAMES}, not {kind or 'untyped'}"
        )
    fields: dict[str, str | None] = {}
    for field in sobject:
        # Absent and xsi:nil="true" both mean empty.
        nil = field.get(f"{{{XSI_NS}}}nil") == "true"
        fields[_local(field.tag)] = None if nil else field.text
    try:
        lead = record_from_fields(fields, obj)
    except LeadError as exc:
        raise LeadError(f"{where}.{exc.field}", str(exc).split(": ", 1)[-1]) from None
    return Notification(notification_id, lead)


def _text(parent: Element, name: str) -> str | None:
    child = parent.find(f"{{{OUTBOUND_NS}}}{name}")
    if child is None or child.get(f"{{{XSI_NS}}}nil") == "true":
        return None
    return (child.text or "").strip() or None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def soap_fault(message: str, *, client: bool) -> str:
    """A SOAP 1.1 fault: ``Client`` when the message itself is wrong, else ``Server``."""
    code = "soapenv:Client" if client else "soapenv:Server"
    return (
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">\n'
        "  <soapenv:Body>\n"
        "    <soapenv:Fault>\n"
        f"      <faultcode>{code}</faultcode>\n"
        f"      <faultstring>{escape(message)}</faultstring>\n"
        "    </soapenv:Fault>\n"
        "  </soapenv:Body>\n"
        "</soapenv:Envelope>\n"
    )
