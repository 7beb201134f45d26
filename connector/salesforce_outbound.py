"""Placeholder while the connector is being written."""

from flask import Blueprint

blueprint = Blueprint("salesforce_outbound", __name__)
