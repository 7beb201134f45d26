"""Placeholder while the connector is being written."""

from flask import Blueprint

blueprint = Blueprint("hubspot_action", __name__)
